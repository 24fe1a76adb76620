"""``indicators run --follow``: pass after pass as lines are appended, each instrument kept in memory."""

from __future__ import annotations

import contextlib
import decimal
import time
from pathlib import Path
from typing import Callable

from ..config import Config
from ..errors import IndicatorError, StorageError, UnknownInstrumentError
from ..lock import InstrumentLocks
from ..numbers import EXACT
from ..progress import no_progress
from ..sources.files import Skipped
from ..storage import InstrumentKey
from .host import Host
from .aggregates import run_aggregates
from .instrument_pass import (InstrumentRun, instrument_records, instruments, run_records, unknown_instrument,
                              wall_clock_ms)
from .summary import InstrumentSummary, RunSummary


class Follower:
    """What ``run --follow`` keeps between passes: every instrument's :class:`InstrumentRun`."""

    def __init__(self, host: Host, vault: Path, only: list[str] | None = None,
                 locks: InstrumentLocks | None = None) -> None:
        self.host = host
        self.vault = vault
        self.only = only
        self.locks = locks  # each instrument is locked when first seen, for the follower's life
        self.runs: dict[tuple[InstrumentKey, str], InstrumentRun] = {}  # by instrument and stream kind
        self.failed: set[tuple[InstrumentKey, str]] = set()  # instruments out of this follower's passes (reported once)
        self.in_pass = False  # False between passes: every run is at a point that may be committed
        self.reported: set[Skipped] = set()  # skipped entries are listed once, when first seen

    def step(self, clock: Callable[[], int], grace_ms: int, commit: bool) -> RunSummary:
        """One pass over every instrument (new ones included); failures are in the summary, once."""
        self.in_pass = True
        summary = RunSummary(kinds=self.host.kinds)
        skipped: list[Skipped] = []
        found = instruments(self.host, self.vault, self.only, skipped)
        summary.skipped = [s for s in skipped if s not in self.reported]
        self.reported.update(skipped)
        keys: list[InstrumentKey] = []
        for key, kind, folder in found:
            if key not in keys:
                keys.append(key)
            if (key, kind.name) in self.failed:
                continue
            run = self.runs.get((key, kind.name))
            if run is None:
                if self.locks is not None:
                    self.locks.acquire(key)
                try:
                    run = self.runs[key, kind.name] = InstrumentRun(self.host, self.vault, key, folder, kind)
                except UnknownInstrumentError as exc:
                    self.failed.add((key, kind.name))
                    summary.instruments.append(InstrumentSummary(key, dict.fromkeys(kind.counters, 0),
                                                                 failures=[unknown_instrument(exc, folder)], kind=kind.name))
                    continue
            done = run.advance(no_progress, clock, grace_ms, commit=commit)
            summary.instruments.append(done)
            if run.broken:
                self.failed.add((key, kind.name))
                del self.runs[key, kind.name]
            stopped = summary.stopped
            if stopped is not None:
                raise StorageError(stopped.message)
        if commit and summary.stopped is None:  # record consumers follow what their producers just committed
            for kind in (k for k in self.host.kinds.values() if k.reads_records):
                for key in keys:
                    records = instrument_records(self.host, self.vault, key)
                    if records is not None and records.consumers:
                        done = run_records(records, kind)
                        if done.failures or done.counters.get("minutes"):
                            summary.instruments.append(done)
        if commit and summary.stopped is None:  # the aggregates follow what the members just committed
            summary.instruments += [s for s in run_aggregates(self.host, self.vault) if s.failures or s.counters["minutes"]]
        self.in_pass = False
        return summary

    def commit_written(self, indicators: frozenset[str]) -> None:
        """Commit the instruments where one of ``indicators`` wrote a record since the last commit.

        Signals are delivered only once committed; this keeps their delay at one pass, not
        ``commit_seconds``.  Only between passes.
        """
        assert not self.in_pass
        for (key, _), run in self.runs.items():
            # a record consumer named (confluence) follows its producers' commit: commit those too
            records = instrument_records(self.host, self.vault, key)
            readers = [rc for rc in records.consumers if rc.c.name in indicators] if records is not None else []
            names = indicators | {i.indicator for rc in readers for i in rc.inputs}
            if any(out.uncommitted() for c in run.consumers if c.name in names for out in c.outputs.values()):
                run.commit()
                run.close()
                if readers:
                    try:
                        records.run()
                    except IndicatorError:
                        pass  # the next committing pass runs the record phase again and reports it

    def commit(self) -> None:
        """Commit every instrument; only between passes."""
        assert not self.in_pass
        for run in self.runs.values():
            run.commit()
            run.close()
        for key in dict.fromkeys(key for key, _ in self.runs):
            records = instrument_records(self.host, self.vault, key)
            if records is not None:
                records.run()


def follow(
    vault: Path, cfg: Config, only: list[str] | None = None, poll_seconds: float = 1.0, grace_seconds: float = 5.0,
    on_pass: Callable[[RunSummary], None] | None = None, clock: Callable[[], int] = wall_clock_ms,
    on_commit: Callable[[InstrumentKey, dict[str, dict[str, int]]], None] | None = None,
    commit_now: frozenset[str] = frozenset(), watch: bool = True,
) -> None:
    """Pass after pass as lines are appended, until interrupted (Ctrl-C / SIGTERM).

    Each pass writes its records at once (readers of the outputs see them);
    outputs and states are committed every ``commit_seconds`` and when the
    follower is stopped between passes.  A follower stopped inside a pass,
    or killed, leaves the last commit, from which the next run redoes the
    same bytes.  Bars also close when the wall clock passes their end plus
    ``grace_seconds``; a trade arriving after that for such a minute is late
    (SPEC section 2).  Between passes it waits for a file-system event under
    ``raw/`` (with ``watch``) or ``poll_seconds``, whichever comes first.
    """
    from ..watch import Wakeup  # watchdog's observer thread: only for a follower

    host = Host.load(cfg)
    if on_commit is not None:
        host.on_commit.append(on_commit)
    previous = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    try:
        with InstrumentLocks(vault) as locks, contextlib.closing(Wakeup(vault, poll_seconds, watch)) as wakeup:
            follower = Follower(host, vault, only, locks)
            last_commit = time.monotonic()
            try:
                while True:
                    due = time.monotonic() - last_commit >= cfg.run.commit_seconds
                    summary = follower.step(clock, int(grace_seconds * 1000), commit=due)
                    if due:
                        last_commit = time.monotonic()
                    elif commit_now:
                        follower.commit_written(commit_now)
                    if on_pass is not None:
                        on_pass(summary)
                    wakeup.after_pass(summary.total("lines"))
                    wakeup.wait()
            except KeyboardInterrupt:
                if not follower.in_pass:
                    follower.commit()
                raise
    finally:
        decimal.setcontext(previous)