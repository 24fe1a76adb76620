"""Instruments in worker processes (`run --jobs N`) and runs side by side on one vault."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from indicator_core.cli import main
from indicator_core.lock import is_held
from tests.resume_cases import config, materialize, reference
from tests.vaults import outputs, run, run_subprocess

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "v"
    materialize(v, 1.0)  # ETH-USDT-SWAP and BTC-USDT-SWAP
    return v


def slow(tmp_path: Path) -> Path:
    """Small chunks and a commit after each: a pass that lasts long enough to be interrupted."""
    return config(tmp_path, 1 << 14, 0.0001)


def held_by(vault: Path, proc, other_than: set[int] = frozenset(), limit: float = 60.0) -> tuple[Path, int]:
    """The first instrument lock found held by a process other than ``other_than``, and its pid."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        for path in (vault / "state" / ".locks").glob("*/*/*.lock"):
            if is_held(path):
                text = path.read_bytes()[1:].strip()
                if text and int(text) not in other_than:
                    return path, int(text)
        time.sleep(0.005)
    raise AssertionError(f"no instrument lock held (exit status {proc.poll()})")


@pytest.mark.parametrize("start", ["default", "spawn", "forkserver"])
def test_jobs_2_writes_the_tree_jobs_1_writes_and_lists_every_instrument(tmp_path: Path, vault: Path, capsys, monkeypatch,
                                                                         start: str) -> None:
    """The default start method (fork on Linux), spawn (the one Windows has) and forkserver (macOS)."""
    if start != "default":
        if start not in multiprocessing.get_all_start_methods():
            pytest.skip(f"no {start} here")
        monkeypatch.setenv("INDICATOR_CORE_START_METHOD", start)
    # a third instrument: the ETH trades again under another market folder (the exchange folder chooses the format)
    for kind in ("trades", "books", "derivs"):  # the vault of the resume cases has ETH books and derivatives too
        if (vault / "raw" / kind / "okx").is_dir():
            shutil.copytree(vault / "raw" / kind / "okx" / "perps", vault / "raw" / kind / "okx" / "perps2")
            shutil.rmtree(vault / "raw" / kind / "okx" / "perps2" / "BTC-USDT-SWAP", ignore_errors=True)
    cfg = config(tmp_path, 1 << 14)
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    for label in ("okx/perps/BTC-USDT-SWAP", "okx/perps/ETH-USDT-SWAP", "okx/perps2/ETH-USDT-SWAP"):
        assert re.search(rf"^{label}: \d+ trades", out, re.M), out
    assert "done: 3 instruments" in out
    jobs2 = outputs(vault)
    serial = tmp_path / "serial"
    shutil.copytree(vault / "raw", serial / "raw")
    assert run(serial, cfg, "--jobs", "1") == 0
    assert outputs(serial) == jobs2
    assert {k: v for k, v in jobs2.items() if "/perps/" in k} == reference()
    # the copy's rejects name its own file; everything else is the same bytes as the original's
    assert {k.replace("/perps2/", "/perps/"): v.replace(b"/perps2/", b"/perps/") for k, v in jobs2.items() if "/perps2/" in k} == \
        {k: v for k, v in reference().items() if "ETH-USDT-SWAP" in k}


def test_a_failed_instrument_is_listed_with_its_error_and_the_others_complete(tmp_path: Path, vault: Path, capsys) -> None:
    cfg = config(tmp_path, 1 << 20)
    assert run(vault, cfg) == 0
    before = outputs(vault)
    damaged = vault / "state" / "cvd" / "okx" / "perps" / "ETH-USDT-SWAP.state.json"
    damaged.write_text("this is not json")
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--jobs", "2"]) == 1
    cap = capsys.readouterr()
    # a damaged state stops that indicator of that instrument only
    assert "rejects; failed: cvd" in cap.out and "okx/perps/BTC-USDT-SWAP: 0 trades" in cap.out
    assert "1 failed" in cap.out
    assert str(damaged) in cap.err and "indicators reset" in cap.err
    assert outputs(vault) == before


def _recording_read_ahead(monkeypatch, marks: Path) -> None:
    """Every pass that reads ahead in a helper thread leaves a file named by its process id in ``marks``."""
    from indicator_core.runtime import instrument_pass as engine

    real = engine.map_ahead

    def recording(*args, **kwargs):
        (marks / str(os.getpid())).touch()
        return real(*args, **kwargs)

    marks.mkdir()
    monkeypatch.setattr(engine, "map_ahead", recording)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="the recording is inherited by fork")
@pytest.mark.parametrize("cores", [2, 3, 4, 8])
def test_pool_workers_read_ahead_only_with_a_core_to_spare_each(tmp_path: Path, vault: Path, monkeypatch,
                                                               cores: int) -> None:
    from indicator_core.runtime import parallel

    monkeypatch.setenv("INDICATOR_CORE_START_METHOD", "fork")
    monkeypatch.setattr(parallel, "default_jobs", lambda: cores)
    _recording_read_ahead(monkeypatch, tmp_path / "marks")
    assert run(vault, config(tmp_path, 1 << 14), "--jobs", "2") == 0  # two instruments, two workers
    readers = {int(p.name) for p in (tmp_path / "marks").iterdir()}
    assert os.getpid() not in readers
    assert len(readers) == (2 if cores >= 4 else 0)  # each worker's helper needs a core of its own
    assert outputs(vault) == reference()


@pytest.mark.parametrize("cores", [1, 2])
def test_a_process_with_one_core_reads_and_parses_inline(tmp_path: Path, vault: Path, monkeypatch, cores: int) -> None:
    from indicator_core.runtime import host

    monkeypatch.setattr(host, "usable_cores", lambda: cores)
    _recording_read_ahead(monkeypatch, tmp_path / "marks")
    assert run(vault, config(tmp_path, 1 << 14), "--jobs", "1") == 0
    assert [p.name for p in (tmp_path / "marks").iterdir()] == ([str(os.getpid())] if cores > 1 else [])
    assert outputs(vault) == reference()


@posix_only
def test_a_worker_killed_mid_run_loses_nothing(tmp_path: Path, vault: Path) -> None:
    proc = run_subprocess(vault, slow(tmp_path), "--jobs", "2")
    _, worker = held_by(vault, proc, other_than={proc.pid})
    os.kill(worker, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert b"stopped unfinished, because a worker process ended abruptly" in err
    assert run(vault, config(tmp_path, 1 << 20), "--jobs", "2") == 0
    assert outputs(vault) == reference()


@posix_only
def test_parent_killed_mid_run_takes_its_workers_along(tmp_path: Path, vault: Path) -> None:
    proc = run_subprocess(vault, slow(tmp_path), "--jobs", "2")
    lock, worker = held_by(vault, proc, other_than={proc.pid})
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 30
    while is_held(lock) and time.monotonic() < deadline:  # the orphaned worker ends with its parent
        time.sleep(0.01)
    assert not is_held(lock)
    assert run(vault, config(tmp_path, 1 << 20), "--jobs", "2") == 0
    assert outputs(vault) == reference()


@posix_only
def test_ctrl_c_stops_parent_and_workers_and_loses_nothing(tmp_path: Path, vault: Path) -> None:
    proc = run_subprocess(vault, slow(tmp_path), "--jobs", "2", start_new_session=True)
    held_by(vault, proc, other_than={proc.pid})
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert b"interrupted: outputs and state are as of the last commit" in err
    assert run(vault, config(tmp_path, 1 << 20), "--jobs", "2") == 0
    assert outputs(vault) == reference()


def test_two_runs_on_disjoint_instruments_of_one_vault_both_succeed(tmp_path: Path, vault: Path) -> None:
    cfg = slow(tmp_path)
    a = run_subprocess(vault, cfg, "--inst", "ETH-USDT-SWAP")
    held_by(vault, a)  # the first is working when the second starts
    b = run_subprocess(vault, cfg, "--inst", "BTC-USDT-SWAP")
    _, err_b = b.communicate(timeout=300)
    _, err_a = a.communicate(timeout=300)
    assert (a.returncode, b.returncode) == (0, 0), (err_a, err_b)
    assert outputs(vault) == reference()


def test_a_second_run_on_the_same_instrument_is_refused_naming_the_first(tmp_path: Path, vault: Path) -> None:
    cfg = slow(tmp_path)
    a = run_subprocess(vault, cfg, "--inst", "ETH-USDT-SWAP")
    held_by(vault, a)
    b = run_subprocess(vault, cfg, "--inst", "ETH-USDT-SWAP")
    _, err_b = b.communicate(timeout=300)
    running = a.poll() is None
    _, err_a = a.communicate(timeout=300)
    assert a.returncode == 0, err_a
    if running:  # (if the first finished already, the second simply ran after it)
        assert b.returncode == 1
        assert f"okx/perps/ETH-USDT-SWAP: another run (pid {a.pid}) is processing this instrument".encode() in err_b
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    assert outputs(vault) == reference()


def test_jobs_must_be_positive_and_follow_takes_none(vault: Path, capsys) -> None:
    assert main(["run", "--vault", str(vault), "--jobs", "0"]) == 2
    assert "--jobs 0" in capsys.readouterr().err
    assert main(["run", "--vault", str(vault), "--jobs", "2", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "--jobs 2 and --scheduler tcp://127.0.0.1:9: give one of them" in capsys.readouterr().err
    assert main(["run", "--vault", str(vault), "--follow", "--jobs", "2"]) == 2
    assert "one follower per group of instruments" in capsys.readouterr().err


def test_a_follower_refuses_an_instrument_another_run_holds(vault: Path, capsys) -> None:
    from indicator_core.lock import InstrumentLock
    from indicator_core.storage import InstrumentKey

    with InstrumentLock(vault, InstrumentKey("okx", "perps", "ETH-USDT-SWAP")):
        assert main(["run", "--vault", str(vault), "--follow", "--poll", "0.01", "--inst", "ETH-USDT-SWAP"]) == 1
    assert f"okx/perps/ETH-USDT-SWAP: another run (pid {os.getpid()})" in capsys.readouterr().err
    assert outputs(vault) == {}


def test_pools_start_with_forkserver_where_it_exists_and_as_told(monkeypatch) -> None:
    import multiprocessing

    from indicator_core.runtime.parallel import _context

    import threading

    monkeypatch.delenv("INDICATOR_CORE_START_METHOD", raising=False)
    methods = multiprocessing.get_all_start_methods()
    server = "forkserver" if "forkserver" in methods else "spawn"
    alone = threading.active_count() == 1
    expected = "fork" if sys.platform.startswith("linux") and alone else server
    assert _context().get_start_method() == expected
    other = threading.Thread(target=threading.Event().wait, args=(2,), daemon=True)
    other.start()  # a process running another thread never forks: a lock might be copied taken
    assert _context().get_start_method() == server
    monkeypatch.setenv("INDICATOR_CORE_START_METHOD", "spawn")
    assert _context().get_start_method() == "spawn"


def test_an_unknown_start_method_is_a_clear_usage_error(vault: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INDICATOR_CORE_START_METHOD", "bogus")
    assert main(["run", "--vault", str(vault), "--jobs", "2"]) == 2
    assert "INDICATOR_CORE_START_METHOD='bogus'" in capsys.readouterr().err
