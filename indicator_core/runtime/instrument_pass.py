"""The one pass: an instrument's new lines of one input kind, read once, fed to every consumer, committed.

Consumers normally share one cursor, and then each chunk is read and parsed
once for all of them.  A consumer that is behind (an indicator enabled again
after a pause, or one whose commit a crash interrupted) is caught up first:
the pass starts at the lowest cursor and each consumer joins when the read
position reaches its own cursor.  Nothing here names a kind: the kind
(:class:`~indicator_core.streams.base.StreamKind`) says where the files are,
how they parse and which stream turns them into events.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import orjson

from .. import integrity
from ..errors import FingerprintMismatch, IndicatorError, StateError, StorageError, UnknownInstrumentError, os_error_message
from ..instruments import HOW_TO_DECLARE
from ..integrity import FilesRead
from ..prefetch import map_ahead, map_inline
from ..progress import ProgressFactory, no_progress
from ..sources.files import Cursor, LineNumbers, Skipped, TradeFile, at_end, position, read_chunks, remaining_bytes
from ..storage import InstrumentKey
from ..streams.base import StreamKind
from ..streams.discovery import discover_all
from .consumer import Consumer, commit_all
from .dispatch import Dispatch
from .host import Host
from .records import RecordRun, record_run
from .summary import Failure, InstrumentSummary, PluginFailure


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _then(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda item: second(first(item))



class InstrumentRun:
    """One instrument's consumers and stream of one kind (trades or books), loaded once.

    A batch run makes one pass with it; a follower keeps it between passes,
    so the states are read once and the indicators stay in memory.  Whatever
    goes wrong with this instrument ends up in the summary :meth:`advance`
    returns (an indicator that fails is left out, the others go on); only an
    instrument that is not known at all raises, from the constructor.
    """

    def __init__(self, host: Host, vault: Path, key: InstrumentKey, folder: Path, kind: StreamKind) -> None:
        self.host = host
        self.vault = vault
        self.key = key
        self.folder = folder
        self.kind = kind
        self.inst = host.table.get(key.inst_id)
        self.failures: list[Failure] = []  # found while loading, reported by the next advance
        self.consumers = []
        for c in host.consumers(vault, key, self.inst, kind, self.failures):
            try:
                c.load(vault)
            except PluginFailure as exc:
                self.failures.append(exc.failure)
            except FingerprintMismatch as exc:
                self.failures.append(Failure(str(exc), f"restore the old settings, or rebuild: {c.reset_command(vault)}",
                                             c.name))
            except IndicatorError as exc:
                self.failures.append(Failure(str(exc), f"restore the state file, or rebuild: {c.reset_command(vault)}",
                                             c.name))
            else:
                self.consumers.append(c)
        self.stream: Any = None  # kind.new_stream(): a TradeStream, a BookStream
        self.cursor = Cursor()  # the read position (a consumer's cursor is its committed one)
        self.dispatch = Dispatch()
        self.waiting: list[Consumer] = []  # behind the read position: they join when it reaches them
        self.broken = False  # the instrument failed as a whole: nothing more is done with it
        self.listing: tuple[str, ...] = ()  # the file names of the last pass (backfill is looked for on a change)
        self.backfill_named: set[str] = set()

    def reset_all_command(self) -> str:
        return integrity.reset_all_command(self.vault, self.key.inst_id)

    def advance(self, progress: ProgressFactory = no_progress, clock: Callable[[], int] | None = None,
                grace_ms: int = 0, commit: bool = True) -> InstrumentSummary:
        """Read and process what is new, then commit (or, with ``commit=False``, only write the records).

        With a ``clock`` (follow mode: epoch ms now), bars whose end plus
        ``grace_ms`` has passed are closed at the end of the pass even without
        a later trade.  Records written without a commit are cut back and
        written again by the next run if this process dies before committing.

        Failures are in the summary: an indicator that raised is out for the
        rest of the run (its outputs and state as of its last commit); a
        problem of the instrument as a whole (a changed trade file, a cursor
        that no longer fits the files) leaves every output and state as of the
        last commit and the instrument out; a write the disk refused is a
        ``"stopped"`` failure, after which a run goes no further.
        """
        started = time.perf_counter()
        summary = InstrumentSummary(self.key, dict.fromkeys(self.kind.counters, 0), kind=self.kind.name)
        summary.failures, self.failures = self.failures, []
        if self.broken:
            return summary
        try:
            self._advance(summary, progress, clock, grace_ms, commit)
        except StorageError as exc:
            summary.failures.append(Failure(str(exc), "run again once the cause above is fixed: the run continues "
                                            "from the last commit", kind="stopped"))
            self.broken = True
        except IndicatorError as exc:
            for c in self.consumers:
                c.cut_back()
            fix = getattr(exc, "fix", None) or (
                f"put back what the message names, or rebuild the instrument from its files: {self.reset_all_command()}")
            summary.failures.append(Failure(str(exc), fix))
            self.broken = True
        finally:
            self.dispatch.discard_pending()  # none after a commit; what a stopped pass left is read again
            self.close()
        summary.failures += self.dispatch.failures
        self.dispatch.failures = []
        if self.dispatch.dropped:
            self.consumers = [c for c in self.consumers if c not in self.dispatch.dropped]
        summary.seconds = time.perf_counter() - started
        return summary

    def _check_files(self, files: list[TradeFile], first: bool) -> None:
        """Stop (raise) if a file a cursor is in was changed; note backfilled files in ``self.failures``."""
        cursors = [c.cursor for c in self.consumers] if first else [self.cursor]
        seen: set[tuple] = set()
        for cur in cursors:
            if (cur.file, cur.offset, cur.digest) in seen:
                continue
            seen.add((cur.file, cur.offset, cur.digest))
            why = integrity.changed(files, cur, digest=first)
            if why:
                exc = StateError(f"{self.key.label}: {why}; the instrument stopped, its outputs and state stay as "
                                 "of the last commit")
                exc.fix = f"restore the file as it was, or rebuild the instrument from its files: {self.reset_all_command()}"
                raise exc
        listing = tuple(f.name for f in files)
        if listing == self.listing:
            return
        self.listing = listing
        late: list[str] = []
        for c in self.consumers:
            if c.read is None:  # an old state: the files before its cursor now count as read
                c.read = FilesRead()
                c.read.add_all(f for f in files[: integrity.index(files, c.cursor)] if not f.ghost)
                continue
            late += [f.name for f in integrity.backfill(files, c.cursor, c.read) if f.name not in late]
        new = [n for n in late if n not in self.backfill_named]
        if new:
            self.backfill_named.update(new)
            self.failures.append(Failure(integrity.backfill_message(self.key.label, new),
                                         integrity.backfill_fix(self.vault, self.key.inst_id), kind="backfill"))

    def _advance(self, summary: InstrumentSummary, progress: ProgressFactory, clock: Callable[[], int] | None,
                 grace_ms: int, commit: bool) -> None:
        cfg = self.host.cfg
        files = self._files()
        if not files:
            return
        first = self.stream is None
        self._check_files(files, first)
        summary.failures += self.failures
        self.failures = []
        if first:
            if not self.consumers:
                return
            order = sorted(self.consumers, key=lambda c: position(files, c.cursor))
            self.stream = self.kind.new_stream(self.inst, cfg)
            self.kind.bind(self.stream, self.vault, self.key, cfg,
                           {n for n, s in self.host.settings.items() if s.enabled})
            if order[0].stream_state is not None:
                self.stream.set_state(order[0].stream_state)
            self.cursor = order[0].cursor
            self.waiting = order
        stream = self.stream
        start_counters = dict(stream.counters)
        # trades ahead of the clock (taken once per pass) are rejected, as are those outside their file's day
        now_ms = clock() if clock is not None else wall_clock_ms()
        tolerance = cfg.input.day_tolerance_minutes
        todo = remaining_bytes(files, self.cursor)
        bar = progress(todo, self.key.inst_id)
        # threads only for more than one chunk, and for a parser that leaves the GIL (numpy) most of the time
        threads = self.kind.parse_in_threads and self.host.parse_threads()
        batch_bytes = cfg.run.batch_bytes * self.kind.batch_scale
        ahead = map_ahead if todo > batch_bytes and threads else map_inline
        read_from = self.cursor
        parse = self.kind.parser(cfg, self.key.inst_id, tolerance, now_ms)
        prepare = getattr(stream, "prepare", None)  # work on a parsed chunk that needs no stream state (parse thread)
        if prepare is not None:
            parse = _then(parse, prepare)
        try:
            while True:
                waiting = self.waiting
                while waiting and position(files, waiting[0].cursor) == position(files, self.cursor):
                    self.dispatch.add(waiting.pop(0))
                stop = waiting[0].cursor if waiting else None
                last_commit = time.monotonic()
                chunks = read_chunks(files, self.cursor, stop, batch_bytes, mapped=self.kind.reads_mapped)
                numbers = LineNumbers()
                labels: dict[Path, str] = {}  # a file's label, made once (pathlib's relative_to is not cheap)
                for chunk, parsed in ahead(parse, chunks):
                    numbers.settle(chunk, parsed)
                    label = labels.get(chunk.file.path)
                    if label is None:
                        label = labels[chunk.file.path] = _label(chunk.file.path, self.vault)
                    stream.process(parsed, label, self.dispatch)
                    self.cursor = chunk.end
                    bar.update(len(chunk.buf))
                    if time.monotonic() - last_commit >= cfg.run.commit_seconds:
                        self.commit(files)
                        last_commit = time.monotonic()
                if not waiting:
                    break
                if position(files, self.cursor) != position(files, waiting[0].cursor):
                    raise StateError(
                        f"{waiting[0].state_file} records a position ({waiting[0].cursor.file} byte "
                        f"{waiting[0].cursor.offset}) beyond the end of the trades on disk; were trade files "
                        f"shortened? Restore them, or rebuild with `{waiting[0].reset_command(self.vault)}`"
                    )
            settle = getattr(stream, "settle", None)  # what waited on another input (derivs: the closes)
            if settle is not None:
                settle(self.dispatch)
            if clock is not None:
                stream.close_by_clock(clock(), grace_ms, self.dispatch)
            if commit:
                self.commit(files)
            else:
                self.dispatch.flush()
                for c in self.consumers:
                    for out in c.outputs.values():
                        out.write_through()
                if not self.cursor.same_place(read_from):  # what a follower checks its next pass against
                    self.cursor = integrity.stamp(files, self.cursor)
        except OSError as exc:
            for c in self.consumers:
                for out in c.outputs.values():
                    out.discard()
            raise StorageError(f"{self.key.label}: " + os_error_message(
                exc, "the run stopped", after="outputs and state are as of the last commit, the next run continues from there"
            )) from exc
        finally:
            bar.close()
        summary.counters = {k: stream.counters.get(k, 0) - start_counters.get(k, 0) for k in self.kind.counters}

    def _files(self) -> list[TradeFile]:
        """The trade files in stream order; those the cursors name stay listed even once archived."""
        return self.kind.list_files(self.host.cfg, self.folder, self.key.inst_id,
                                    [c.cursor for c in self.consumers] + [self.cursor], self.host.formats)

    def commit(self, files: list[TradeFile] | None = None) -> None:
        """Outputs on disk, then every consumer's state with the read position (SPEC section 8).

        A consumer whose position and stream state are those of its last
        commit has nothing new: its state file is not written again (a run
        with nothing new writes nothing).
        """
        if self.stream is None or self.broken:
            return
        self.dispatch.flush()  # the bars waiting for a run: their records are part of what is committed
        if files is None:
            files = self._files()
        cursor = at_end(files, self.cursor)
        state = self.stream.to_state()
        state_bytes = orjson.dumps(state)
        stamped: Cursor | None = None
        k_new = integrity.index(files, cursor)
        todo: list[tuple[Consumer, FilesRead]] = []
        for c in self.dispatch.all:
            if c.cursor.same_place(cursor) and c.stream_bytes == state_bytes:
                continue
            if stamped is None:
                stamped = integrity.stamp(files, cursor)
            read = FilesRead({t: [list(r) for r in rs] for t, rs in c.read.ranges.items()} if c.read else None)
            read.add_all(files[integrity.index(files, c.cursor):k_new])
            todo.append((c, read))
        if todo:
            assert stamped is not None
            commit_all(todo, stamped, state, state_bytes, lambda c, exc: self.dispatch.fail(c, exc, "get_state"))
        if stamped is not None:
            self.cursor = stamped
        if self.host.on_commit:
            lengths = {c.name: {s: out.length for s, out in c.outputs.items()} for c in self.dispatch.all}
            for listener in self.host.on_commit:
                listener(self.key, lengths)

    def close(self) -> None:
        for c in self.consumers:
            c.close()


def run_streams(host: Host, vault: Path, key: InstrumentKey, streams: list[tuple[str, Path]],
                progress: ProgressFactory = no_progress) -> list[InstrumentSummary]:
    """One pass over each kind of stream of an instrument (a task of :mod:`.parallel`), in order: its file
    kinds, then the kinds whose input is the records those just committed (``StreamKind.reads_records``)."""
    record_kinds = [k for k in host.kinds.values() if k.reads_records]
    records = instrument_records(host, vault, key) if record_kinds else None  # a plan error is said before a pass
    done = []
    for name, folder in streams:
        done.append(run_instrument(host, vault, key, folder, host.kinds[name], progress))
        if any(f.kind == "stopped" for f in done[-1].failures):
            return done  # the disk refused a write
    if records is not None and records.consumers:
        done += [run_records(records, kind) for kind in record_kinds]
    return done


def instrument_records(host: Host, vault: Path, key: InstrumentKey) -> RecordRun | None:
    """The instrument's record consumers, loaded once per host (``None`` for an unknown instrument: its file
    kinds say so)."""
    try:
        inst = host.table.get(key.inst_id)
    except UnknownInstrumentError:
        return None
    return record_run(host, vault, key, inst)


def run_records(records: RecordRun, kind: StreamKind) -> InstrumentSummary:
    """Deliver to an instrument's record consumers what their producers have committed, and commit."""
    started = time.perf_counter()
    summary = InstrumentSummary(records.key, dict.fromkeys(kind.counters, 0), kind=kind.name)
    try:
        summary.counters["minutes"] = records.run()
    except StorageError as exc:
        summary.failures.append(Failure(str(exc), "run again once the cause above is fixed: the run continues "
                                        "from the last commit", kind="stopped"))
    except IndicatorError as exc:
        fix = getattr(exc, "fix", None) or ("put back what the message names, or rebuild the instrument from its "
                                            f"files: {integrity.reset_all_command(records.vault, records.key.inst_id)}")
        summary.failures.append(Failure(str(exc), fix))
    summary.seconds = time.perf_counter() - started
    return summary


def run_instrument(
    host: Host, vault: Path, key: InstrumentKey, folder: Path, kind: StreamKind,
    progress: ProgressFactory = no_progress,
) -> InstrumentSummary:
    """One pass over an instrument's new lines of one kind, committed; what went wrong is in the summary, never raised."""
    try:
        run = InstrumentRun(host, vault, key, folder, kind)
    except UnknownInstrumentError as exc:
        return InstrumentSummary(key, dict.fromkeys(kind.counters, 0), failures=[unknown_instrument(exc, folder)],
                                 kind=kind.name)
    return run.advance(progress)


def unknown_instrument(exc: UnknownInstrumentError, folder: Path) -> Failure:
    inst_id = folder.name
    return Failure(
        f"{folder}: {str(exc).split(';')[0]}; the instrument was skipped",
        HOW_TO_DECLARE.format(inst=inst_id) + f"\nor, if it is not an instrument, move the folder out of {folder.parent}",
    )


def _label(path: Path, vault: Path) -> str:
    """How the rejects log names a trade file: relative to the vault, with ``/``."""
    return path.relative_to(vault).as_posix() if path.is_relative_to(vault) else path.as_posix()


def instruments(host: Host, vault: Path, only: list[str] | None,
                skipped: list[Skipped] | None = None) -> list[tuple[InstrumentKey, StreamKind, Path]]:
    """Every instrument's input folders of every kind; an unknown instrument is found here and fails only
    when its pass starts (reported in the summary, the others run)."""
    return discover_all(vault, host.cfg, host.kinds, only, skipped, host.formats)


def by_instrument(found: list[tuple[InstrumentKey, StreamKind, Path]]) -> list[tuple[InstrumentKey, list[tuple[str, Path]]]]:
    """``(instrument, [(kind name, folder), ...])`` in discovery order: one task per instrument, every
    kind of stream of that instrument in it (so its record consumers see all of their producers)."""
    out: dict[InstrumentKey, list[tuple[str, Path]]] = {}
    for key, kind, folder in found:
        out.setdefault(key, []).append((kind.name, folder))
    return list(out.items())
