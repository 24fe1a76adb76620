"""Issue-level guarantees of a real machine: full disks, damaged state, two runs at once, changed settings."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indicator_core.cli import main
from indicator_core.errors import LockedError
from indicator_core.lock import InstrumentLock
from indicator_core.storage import InstrumentKey
from indicator_core.storage import OutputFile
from tests.resume_cases import config, materialize, reference
from tests.vaults import REPO, outputs, run, run_subprocess


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "v"
    materialize(v, 1.0)
    return v


@pytest.mark.parametrize("fail_at", [1, 3, 8])
def test_full_disk_stops_with_status_1_and_next_run_completes(tmp_path: Path, vault: Path, monkeypatch, capsys, fail_at: int) -> None:
    real = OutputFile._drain
    calls = {"n": 0}

    def drain(self: OutputFile) -> None:
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        real(self)

    monkeypatch.setattr(OutputFile, "_drain", drain)
    OutputFile.FLUSH_BYTES, old = 4096, OutputFile.FLUSH_BYTES
    try:
        status = run(vault, config(tmp_path, 4096, 0.0001))
    finally:
        OutputFile.FLUSH_BYTES = old
    assert status == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "run again" in err
    monkeypatch.setattr(OutputFile, "_drain", real)
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    assert outputs(vault) == reference()


def test_unwritable_output_stops_with_status_1(tmp_path: Path, vault: Path, monkeypatch, capsys) -> None:
    real_open = open

    def guarded_open(file, mode="r", *a, **kw):
        if "wicks_5m" in str(file) and "a" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr("builtins.open", guarded_open)
    assert run(vault, config(tmp_path, 1 << 20)) == 1
    assert "Permission denied" in capsys.readouterr().err
    monkeypatch.setattr("builtins.open", real_open)
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    assert outputs(vault) == reference()


def _state(vault: Path, name: str = "volume", inst: str = "ETH-USDT-SWAP") -> Path:
    return vault / "state" / name / "okx" / "perps" / f"{inst}.state.json"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "old format"])
def test_damaged_state_is_reported_never_restarted(tmp_path: Path, vault: Path, capsys, damage: str) -> None:
    cfg = config(tmp_path, 1 << 20)
    assert run(vault, cfg) == 0
    before = outputs(vault)
    path = _state(vault)
    text = path.read_text()
    path.write_text({
        "garbage": "this is not json",
        "truncated": text[: len(text) // 2],
        "empty": "",
        "old format": json.dumps({**json.loads(text), "format": 0}),
    }[damage])
    assert run(vault, cfg) == 1
    err = capsys.readouterr().err
    assert str(path) in err and f"indicators reset --vault {vault} --indicator" in err
    assert outputs(vault) == before  # nothing written twice


ETH = InstrumentKey("okx", "perps", "ETH-USDT-SWAP")


def test_run_refuses_an_instrument_another_run_holds_and_does_the_others(tmp_path: Path, vault: Path) -> None:
    with InstrumentLock(vault, ETH):
        proc = run_subprocess(vault, config(tmp_path, 1 << 20), "--jobs", "2")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1
        assert f"okx/perps/ETH-USDT-SWAP: another run (pid {os.getpid()}) is processing this instrument".encode() in err
        done = outputs(vault)
        assert done and all("BTC-USDT-SWAP" in p for p in done)  # the other instrument ran
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    assert outputs(vault) == reference()


def test_reset_refused_while_a_run_holds_one_of_its_instruments(tmp_path: Path, vault: Path, capsys) -> None:
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    with InstrumentLock(vault, ETH):
        assert main(["reset", "--vault", str(vault), "--indicator", "all"]) == 1
        assert f"okx/perps/ETH-USDT-SWAP: another run (pid {os.getpid()})" in capsys.readouterr().err
        assert outputs(vault) == reference()  # nothing removed, not even the other instrument's
        assert main(["reset", "--vault", str(vault), "--indicator", "all", "--inst", "BTC-USDT-SWAP"]) == 0
    assert all("ETH-USDT-SWAP" in p for p in outputs(vault))


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
def test_lock_dies_with_its_holder(tmp_path: Path, vault: Path) -> None:
    code = (f"import sys,time; sys.path.insert(0, {str(REPO)!r}); from indicator_core.lock import InstrumentLock\n"
            f"from indicator_core.storage import InstrumentKey; from pathlib import Path\n"
            f"with InstrumentLock(Path({str(vault)!r}), InstrumentKey('okx', 'perps', 'ETH-USDT-SWAP')):\n"
            f"    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    with pytest.raises(LockedError):
        with InstrumentLock(vault, ETH):
            pass
    holder.kill()
    holder.wait()
    with InstrumentLock(vault, ETH):
        pass


def test_changed_parameters_refused_until_reset(tmp_path: Path, vault: Path, capsys) -> None:
    cfg = config(tmp_path, 1 << 20)
    assert run(vault, cfg) == 0
    changed = tmp_path / "changed.toml"
    changed.write_text(cfg.read_text().replace("median_min_bars = 3", "median_min_bars = 4"))
    before = outputs(vault)
    assert run(vault, changed) == 1  # the other indicators go on; the changed one needs attention
    err = capsys.readouterr().err
    assert "median_min_bars" in err and f"indicators reset --vault {vault} --indicator volume" in err
    assert outputs(vault) == before
    assert main(["reset", "--vault", str(vault), "--indicator", "volume"]) == 0
    assert run(vault, changed) == 0
    fresh = tmp_path / "fresh"
    materialize(fresh, 1.0)
    assert run(fresh, changed) == 0
    assert outputs(vault) == outputs(fresh)


def test_status_shows_cursor_last_bar_and_counts(tmp_path: Path, vault: Path, capsys) -> None:
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    capsys.readouterr()
    assert main(["status", "--vault", str(vault), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    eth = {r["indicator"]: r for r in rows if r["instrument"] == "okx/perps/ETH-USDT-SWAP" and r["kind"] == "trades"}
    assert set(eth) >= {"quality", "volume", "cvd", "vwap", "candles", "wicks", "whales", "poor_levels"}
    # a record consumer is a row of the records kind: its input is the others' committed records
    recs = {r["indicator"]: r for r in rows if r["instrument"] == "okx/perps/ETH-USDT-SWAP" and r["kind"] == "records"}
    assert set(recs) == {"confluence"}
    assert recs["confluence"]["waiting"] is None and recs["confluence"]["cursor"].startswith("volume byte ")
    books = {r["indicator"]: r for r in rows if r["instrument"] == "okx/perps/ETH-USDT-SWAP" and r["kind"] == "books"}
    assert set(books) == {"quality", "buckets"} and books["quality"]["seq_gaps"] == 3 and books["quality"]["rejects"] == 2
    q = eth["quality"]
    # the moved trade leaves a gap where it was, filled when it arrives late; the two pairs of trades
    # swapped within a minute are no gap; three bad lines and two bad timestamps are rejected
    # 5 bad lines, and 40 trades a day ahead of their file (tests/resume_cases.py: ten listed, the rest summed up)
    assert q["duplicates"] == 2 and q["gaps"] == 2 and q["late"] == 1 and q["rejects"] == 45
    assert q["last_bar_utc"] == "2024-08-08T23:59:00Z"
    assert q["cursor"].startswith("trades_2024-08-09.jsonl:")
    assert main(["status", "--vault", str(vault)]) == 0
    assert "ETH-USDT-SWAP" in capsys.readouterr().out
