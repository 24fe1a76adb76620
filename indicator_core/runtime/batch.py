"""``indicators run``: one pass over every instrument of a vault, on this process, a pool or a cluster."""

from __future__ import annotations

import decimal
import time
from pathlib import Path
from typing import Any

from ..config import Config
from ..numbers import EXACT
from ..progress import ProgressFactory, no_progress
from .aggregates import run_aggregates
from .host import Host
from .instrument_pass import by_instrument, instruments
from .parallel import run_tasks
from .summary import RunSummary


def run(
    vault: Path, cfg: Config, only: list[str] | None = None, progress: ProgressFactory = no_progress,
    jobs: int = 1, scheduler: Any = None,
) -> RunSummary:
    """One pass over every instrument under the vault (or those in ``only``), ``jobs`` at a time
    or on a Dask ``scheduler`` (see :mod:`.parallel`); each instrument under its own lock."""
    started = time.perf_counter()
    host = Host.load(cfg)
    loaded = time.perf_counter()
    previous = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    try:
        summary = RunSummary(kinds=host.kinds)
        summary.instruments = run_tasks(host, vault, by_instrument(instruments(host, vault, only, summary.skipped)),
                                        progress, jobs, scheduler)
        if not summary.stopped:  # the aggregates read what the members just committed (SPEC section 16)
            summary.instruments += run_aggregates(host, vault)
    finally:
        decimal.setcontext(previous)
    summary.load_seconds = loaded - started
    summary.pass_seconds = time.perf_counter() - loaded
    return summary
