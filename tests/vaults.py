"""Helpers to build vaults on disk, run the command line and read every output back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from indicator_core.cli import main

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"  # real recorded trades, see its README
ETH_PERP = DATA / "binance-as-okx" / "eth-perp-2024-08-08" / "ETH-USDT-SWAP"
ETH_2023 = DATA / "binance-as-okx" / "eth-2023-02-02" / "ETH-USDT-SWAP"
OKX = DATA / "okx"


def inst_dir(vault: Path, inst_id: str, exchange: str = "okx", market: str = "perps") -> Path:
    d = vault / "raw" / "trades" / exchange / market / inst_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def book_dir(vault: Path, inst_id: str, exchange: str = "okx", market: str = "perps") -> Path:
    d = vault / "raw" / "books" / exchange / market / inst_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(vault: Path, config: Path | None = None, *extra: str) -> int:
    """``indicators run`` in-process; returns the exit status.

    One process (``--jobs 1``) unless ``extra`` says otherwise, so that what a test patches in this
    process is what the run uses."""
    args = ["run", "--vault", str(vault), "--quiet"]
    if config is not None:
        args += ["--config", str(config)]
    if "--jobs" not in extra and "--scheduler" not in extra:
        args += ["--jobs", "1"]
    return main([*args, *extra])


def default_sigint() -> None:
    """Run in a child before it starts (``preexec_fn``): Ctrl-C (SIGINT) back to its default action.

    A child inherits an *ignored* SIGINT, and its Python then ignores Ctrl-C for good: the tests that stop a
    child with SIGINT would hang whenever the test run itself was started with SIGINT ignored, as a shell
    starts a background job (``pytest &`` without job control ignores SIGINT and SIGQUIT), or ``nohup``.
    Seen here: a follower started with both ignored (``SigIgn`` in ``/proc/PID/status``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_subprocess(vault: Path, config: Path | None = None, *extra: str, **kw) -> subprocess.Popen:
    """``indicators run`` as a child process; one process (``--jobs 1``) unless ``extra`` says otherwise,
    so that the timing of a kill is that of one pass (tests/test_parallel.py kills pools and workers)."""
    args = [sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet"]
    if config is not None:
        args += ["--config", str(config)]
    if "--jobs" not in extra and "--scheduler" not in extra and "--follow" not in extra:
        args += ["--jobs", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if os.name == "posix":
        kw.setdefault("preexec_fn", default_sigint)
    return subprocess.Popen([*args, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def outputs(vault: Path) -> dict[str, bytes]:
    """Every derived file of the vault, by path relative to ``derived/``."""
    root = vault / "derived"
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


def read_jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def trade_line(inst: str, tid: int, px: str, sz: str, side: str, ts: int) -> bytes:
    return (
        '{"instId":"%s","tradeId":"%d","px":"%s","sz":"%s","side":"%s","ts":"%d"}\n' % (inst, tid, px, sz, side, ts)
    ).encode()
