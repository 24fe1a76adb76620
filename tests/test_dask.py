"""`run --scheduler`: the per-instrument tasks on a Dask cluster (a local one of 2 worker processes here)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from tests.resume_cases import config, materialize, reference
from tests.test_parallel import held_by
from tests.vaults import REPO, outputs, run_subprocess

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402  (distributed's own dependency)


@pytest.fixture(scope="module")
def cluster():
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + (old or "")  # the workers import this checkout
    # A LocalCluster closes a lost worker's nanny for good when no worker of its name has come back within
    # lost-worker-timeout of the loss; a stale timer of an earlier loss can fire while a worker killed again
    # is restarting, and the cluster is left without it (once without any worker, and a run waits forever).
    # Workers started by `dask worker` on real machines are not closed so: neither are these.
    try:
        with dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"}):
            c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                         dashboard_address=":0", silence_logs=50)
            try:
                yield c
            finally:
                # closed in a thread given a minute: a cluster whose event loop never stops (seen once, after a
                # failed test on a machine busy with other work) must not hold the whole test run forever
                closing = threading.Thread(target=c.close, daemon=True)
                closing.start()
                closing.join(60)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "v"
    materialize(v, 1.0)
    return v


def test_dask_run_writes_the_same_tree_as_one_process(tmp_path: Path, vault: Path, cluster) -> None:
    proc = run_subprocess(vault, config(tmp_path, 1 << 14), "--scheduler", cluster.scheduler_address)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert outputs(vault) == reference()


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
def test_dask_worker_killed_mid_task_the_task_reruns_elsewhere(tmp_path: Path, vault: Path, cluster) -> None:
    proc = run_subprocess(vault, config(tmp_path, 1 << 14, 0.0001), "--scheduler", cluster.scheduler_address)
    lock, worker = held_by(vault, proc, other_than={proc.pid})
    os.kill(worker, signal.SIGKILL)  # a cluster worker dies mid-task; its nanny starts a new one
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err  # the scheduler gave the task to a live worker
    assert outputs(vault) == reference()


def test_unreachable_scheduler_is_a_clear_error(vault: Path, monkeypatch) -> None:
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    proc = run_subprocess(vault, None, "--scheduler", "tcp://127.0.0.1:9")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert b"--scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler" in err


@pytest.mark.parametrize("address, why", [("bogus", b"missing port number"), ("http://h:1", b"unknown address scheme")])
def test_a_malformed_scheduler_address_is_a_usage_error(vault: Path, capsys, address: str, why: bytes) -> None:
    from indicator_core.cli import main

    assert main(["run", "--vault", str(vault), "--scheduler", address]) == 2
    err = capsys.readouterr().err.encode()
    assert f"--scheduler {address}: not the address of a Dask scheduler (".encode() in err and why in err, err
    assert b"e.g. tcp://HOST:8786" in err and b"Traceback" not in err
    assert not (vault / "derived").exists()


def test_a_cluster_without_workers_is_said_and_the_run_goes_on_when_one_joins(tmp_path: Path, vault: Path, cluster,
                                                                           monkeypatch, capsys) -> None:
    import threading
    import time

    from indicator_core.runtime import parallel
    from indicator_core.cli import main

    monkeypatch.setattr(parallel, "NO_WORKERS_NOTICE_SECONDS", 0.4)
    workers = len(cluster.workers)
    cluster.scale(0)  # the module's cluster, emptied and filled again: a second cluster in this process would
    deadline = time.monotonic() + 60  # need an event loop of its own
    while cluster.scheduler_info["workers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cluster.scheduler_info["workers"]
    try:
        status: list[int] = []
        args = ["run", "--vault", str(vault), "--config", str(config(tmp_path, 1 << 20)), "--quiet",
                "--scheduler", cluster.scheduler_address]
        run = threading.Thread(target=lambda: status.append(main(args)), daemon=True)
        run.start()
        err, deadline = "", time.monotonic() + 60
        while "has had no worker" not in err and time.monotonic() < deadline and run.is_alive():
            time.sleep(0.05)
            err += capsys.readouterr().err
        assert f"waiting: the Dask cluster at {cluster.scheduler_address} has had no worker for " in err
        assert "the run goes on when one joins" in err and not status
    finally:
        cluster.scale(workers)
    run.join(120)
    assert status == [0], capsys.readouterr().err
    assert err.count("has had no worker") == 1  # once a stretch
    assert outputs(vault) == reference()


@pytest.mark.soak
@pytest.mark.timeout(0)  # as long as SOAK_CASES takes
@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
def test_dask_soak_workers_killed_at_random_instants(tmp_path: Path, cluster) -> None:
    import random
    import time

    rng = random.Random(int(os.environ.get("SOAK_SEED", "12")))
    rounds = int(os.environ.get("SOAK_CASES", "20"))
    for k in range(rounds):
        vault = tmp_path / f"v{k}"
        materialize(vault, 1.0)
        proc = run_subprocess(vault, config(tmp_path, 1 << 13, 0.0001), "--scheduler", cluster.scheduler_address)
        for _ in range(rng.randint(1, 2)):  # one or two kills, each at a random instant of a task
            try:
                _, worker = held_by(vault, proc, other_than={proc.pid}, limit=30)
            except AssertionError:
                break  # the run finished first
            time.sleep(rng.uniform(0, 0.5))
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert outputs(vault) == reference(), f"round {k}"
    print(f"soak: {rounds} dask runs with killed workers, outputs identical to one clean run")


def test_dask_backtest_gives_the_bytes_of_one_process(tmp_path: Path, vault: Path, cluster, capsys) -> None:
    from indicator_core.cli import main
    from tests.vaults import run, write_config

    assert run(vault, config(tmp_path, 1 << 20)) == 0
    cfg = write_config(tmp_path / "bt.toml", '[backtest.t]\nsignal = "tier:T2"\nstop_bp = "10"\ntarget_bp = "10"\n'
                       'max_hold_minutes = 10\n')
    capsys.readouterr()
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg), "--json"]) == 0
    one = (capsys.readouterr().out, {k: v for k, v in outputs(vault).items() if k.startswith("backtest/")})
    for k in one[1]:
        (vault / "derived" / k).unlink()
    assert main(["backtest", "--vault", str(vault), "--config", str(cfg), "--json",
                 "--scheduler", cluster.scheduler_address]) == 0
    two = (capsys.readouterr().out, {k: v for k, v in outputs(vault).items() if k.startswith("backtest/")})
    assert one == two and len(one[1]) == 2 and b"signal_id" in b"".join(one[1].values())
