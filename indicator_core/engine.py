"""The one pass: read each instrument's trades once and feed every enabled indicator.

Every indicator of an instrument (and the built-in quality log) is a
*consumer* with its own state file holding its cursor, a copy of the stream
state, the committed length of each of its outputs and its own state.
Consumers normally share one cursor, and then each chunk is read and parsed
once for all of them.  A consumer that is behind (an indicator enabled again
after a pause, or one whose commit a crash interrupted) is caught up first:
the pass starts at the lowest cursor and each consumer joins when the read
position reaches its own cursor.
"""

from __future__ import annotations

import contextlib
import decimal
import hashlib
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import orjson

from .bars import Bar
from .config import Config, PluginSetting, plugin_settings
from . import integrity
from .errors import (
    FingerprintMismatch, IndicatorError, StateError, StorageError, UnknownInstrumentError, os_error_message,
)
from .indicator import Indicator
from .instruments import HOW_TO_DECLARE, Instrument, InstrumentTable
from .integrity import FilesRead
from .lock import InstrumentLocks
from .numbers import EXACT
from .parallel import run_tasks
from .params import canonical_params
from .prefetch import map_ahead, map_inline, usable_cores
from .plugins import collect_indicators, collect_instruments, make_plugin_manager
from .progress import ProgressFactory, no_progress
from .records import reads_records, record_run
from .sources.files import (Cursor, LineNumbers, Skipped, TradeFile, at_end, position, read_chunks,
                            remaining_bytes)
from .storage import (InstrumentKey, OutputFile, at_once, derived_dir, encode_state, raise_first, read_state,
                      state_path, write_state_bytes)
from .stream import COUNTERS
from .streams import KINDS, StreamKind, discover_all
from .streams.books import BookMinute
from .streams.trades import TRADES
from .timeutil import iso_minute
from .trades import TradeBatch


def fingerprint(params: dict[str, Any], inst: Instrument, fill_empty: bool, extra: dict[str, Any] | None = None) -> str:
    """What an indicator's output depends on besides the trades; a change means a rebuild."""
    doc = {
        "params": params,
        "fill_empty_bars": fill_empty,
        "instrument": {"kind": inst.kind, "ct_val": str(inst.ct_val), "ct_val_ccy": inst.ct_val_ccy},
    }
    if extra is not None:  # what the input kind adds (the book channel)
        doc["input"] = extra
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class Consumer:
    """One indicator of one instrument, with its outputs and its saved position."""

    def __init__(self, vault: Path, key: InstrumentKey, indicator: Indicator, params: dict[str, Any], fp: str,
                 fill_empty: bool = True, state_file: Path | None = None, fp_extra: dict[str, Any] | None = None) -> None:
        self.name = indicator.name
        self.fill_empty = fill_empty  # what the fingerprint hashed, besides params and instrument
        self.fp_extra = fp_extra  # and what the input kind added (the book channel)
        self.key = key
        self.indicator = indicator
        self.params = params
        self.fingerprint = fp
        self.state_file = state_file or state_path(vault, self.name, key)
        self.cursor = Cursor()
        self.stream_state: dict[str, Any] | None = None
        self.stream_bytes: bytes | None = None  # the stream state as committed, to tell whether anything changed
        self.read: FilesRead | None = FilesRead()  # files read before the cursor's (None: an old state, unknown)
        self.last_bar: int | None = None
        folder = derived_dir(vault, self.name, key)
        self.outputs = {s: OutputFile(folder / f"{s}.jsonl", 0) for s in indicator.outputs()}
        self.committed: dict[str, int] = dict.fromkeys(self.outputs, 0)  # output lengths at the last commit
        cls = type(indicator)
        self.wants_trades = cls.on_trades is not Indicator.on_trades
        self.trades_by_minute = bool(cls.trades_by_minute)
        self.wants_advance = cls.on_advance is not Indicator.on_advance
        self.wants_bars = cls.on_bar is not Indicator.on_bar or cls.on_empty_bars is not Indicator.on_empty_bars
        self.wants_quality = cls.on_quality is not Indicator.on_quality

    def reset_command(self, vault: Path) -> str:
        return f"indicators reset --vault {vault} --indicator {self.name} --inst {self.key.inst_id}"

    def load(self, vault: Path) -> None:
        try:
            state = read_state(self.state_file)
        except StateError as exc:
            raise StateError(f"{exc}\n  to rebuild {self.name} for {self.key.label}: {self.reset_command(vault)}") from exc
        if state is None:
            for out in self.outputs.values():
                out.recover()  # no state: anything on disk is an uncommitted tail
            return
        try:
            lengths = {s: int(n) for s, n in state["outputs"].items()}
            written = any(lengths.values())
            if state["fingerprint"] != self.fingerprint and written and not self._same_by_value(state):
                raise FingerprintMismatch(
                    f"{self.name} for {self.key.label}: its settings changed since it wrote its output\n"
                    f"  before: {orjson.dumps(self._by_value(state.get('params'))).decode()}\n"
                    f"  now:    {orjson.dumps(self.params).decode()}\n"
                    + self._input_change(state)
                    + "Mixing two definitions in one file is refused. Either restore the old settings, or rebuild "
                    f"this indicator from the start of the trades with:\n"
                    f"  {self.reset_command(vault)}"
                )
            for s, n in lengths.items():
                if s in self.outputs:
                    self.outputs[s].length = n
            self.cursor = Cursor.from_state(state["cursor"])
            self.stream_state = state["stream"]
            self.stream_bytes = orjson.dumps(self.stream_state)
            self.read = FilesRead.from_state(state.get("files_read"))
            self.last_bar = state.get("last_bar")
            plugin_state = state["plugin"]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"state file {self.state_file} is incomplete ({exc!r}); rebuild with `{self.reset_command(vault)}`"
            ) from exc
        try:
            self.indicator.set_state(plugin_state)
        except Exception as exc:  # the indicator's own code: its failure, reported as such
            raise PluginFailure(self, exc, "set_state") from exc
        for out in self.outputs.values():
            out.recover()
        self.committed = {s: out.length for s, out in self.outputs.items()}

    def _input_change(self, state: dict[str, Any]) -> str:
        """Lines naming a change of the input's settings (the book channel, kept in the stream state)."""
        if self.fp_extra is None:
            return ""
        before = {k: (state.get("stream") or {}).get(k) for k in self.fp_extra}
        if before == self.fp_extra:
            return ""
        return (f"  input before: {orjson.dumps(before).decode()}\n"
                f"  input now:    {orjson.dumps(self.fp_extra).decode()}\n")

    def _same_by_value(self, state: dict[str, Any]) -> bool:
        """A state whose fingerprint hashed its parameters as spelled (as earlier versions did), equal by value.

        Its fingerprint is recomputed from the parameters it recorded, with
        today's instrument terms and fill setting: if that matches, only the
        parameters can differ, and they are compared as validated values.
        """
        old = state.get("params")
        if not isinstance(old, dict) or set(old) != set(self.params):
            return False
        if fingerprint(old, self.indicator.instrument, self.fill_empty, self.fp_extra) != state["fingerprint"]:
            return False
        return self._by_value(old) == self.params

    def _by_value(self, params: Any) -> Any:
        """Recorded parameters in today's canonical spelling (as recorded if they are not valid today)."""
        try:
            return canonical_params(type(self.indicator).Params.model_validate(params))
        except ValueError:  # pydantic's ValidationError
            return params

    def emit(self, stream: str, record: dict[str, Any]) -> None:
        try:
            out = self.outputs[stream]
        except KeyError:
            raise IndicatorError(
                f"indicator {self.name!r} emitted to {stream!r}, which is not among its outputs() {list(self.outputs)}"
            ) from None
        out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def plugin_state(self) -> Any:
        """The indicator's own state for a commit (its failure raised as a :class:`PluginFailure`)."""
        try:
            return self.indicator.get_state()
        except Exception as exc:
            raise PluginFailure(self, exc, "get_state") from exc

    def state_bytes(self, cursor: Cursor, stream: dict[str, Any], plugin: Any, read: FilesRead) -> bytes:
        """The state file a commit writes, once the outputs are on disk at their current lengths."""
        doc = {
            "indicator": self.name,
            "indicator_version": type(self.indicator).version,
            "inst_id": self.key.inst_id,
            "fingerprint": self.fingerprint,
            "params": self.params,
            "cursor": cursor.to_state(),
            "last_bar": self.last_bar,
            "last_bar_utc": iso_minute(self.last_bar) if self.last_bar is not None else None,
            "stream": stream,
            "outputs": {s: out.length for s, out in self.outputs.items()},
            "plugin": plugin,
            "files_read": read.to_state(),
        }
        try:
            return encode_state(doc)
        except orjson.JSONEncodeError as exc:  # only the indicator's own state can fail to encode
            raise PluginFailure(self, exc, "get_state") from exc

    def committed_at(self, cursor: Cursor, stream_bytes: bytes, read: FilesRead) -> None:
        """Its state file was replaced: the position it names is now the last commit."""
        self.cursor = cursor
        self.stream_bytes = stream_bytes
        self.read = read
        self.committed = {s: out.length for s, out in self.outputs.items()}

    def commit(self, cursor: Cursor, stream: dict[str, Any], stream_bytes: bytes, read: FilesRead) -> None:
        """Outputs on disk, then the state, of this consumer alone (its failure raised as a PluginFailure)."""
        commit_all([(self, read)], cursor, stream, stream_bytes)

    def cut_back(self) -> None:
        """Forget everything since the last commit: buffered records, and bytes already handed to the files."""
        for s, out in self.outputs.items():
            out.discard()
            out.close()
            out.length = self.committed.get(s, 0)
            try:
                out.recover()
            except (OSError, IndicatorError):
                pass  # the next run cuts it back when it loads the state

    def close(self) -> None:
        for out in self.outputs.values():
            out.close()


def _raise(c: Consumer, exc: PluginFailure) -> None:
    raise exc


def commit_all(todo: list[tuple[Consumer, FilesRead]], cursor: Cursor, stream: dict[str, Any], stream_bytes: bytes,
               failed: Callable[[Consumer, PluginFailure], None] = _raise) -> None:
    """Commit consumers at ``cursor`` (SPEC section 8): every output on disk, then every state file.

    Each step runs its fsyncs side by side (:func:`storage.at_once`), and no
    state is written before every output is on disk.  A consumer whose own
    state fails (``get_state`` raises, or holds what JSON cannot) goes to
    ``failed`` and is not committed; the others are.  A write the disk refuses
    is raised once the step has ended, the states written beside it counted.
    """
    ready: list[tuple[Consumer, FilesRead, Any]] = []
    for c, read in todo:
        try:
            ready.append((c, read, c.plugin_state()))
        except PluginFailure as exc:
            failed(c, exc)
    raise_first(at_once([call for c, _, _ in ready for out in c.outputs.values() for call in out.syncs()]))
    for c, _, _ in ready:
        for out in c.outputs.values():
            out.synced()
    writes: list[tuple[Consumer, FilesRead, bytes]] = []
    for c, read, plugin in ready:
        try:
            writes.append((c, read, c.state_bytes(cursor, stream, plugin, read)))
        except PluginFailure as exc:
            failed(c, exc)
    errors = at_once([partial(write_state_bytes, c.state_file, data) for c, _, data in writes])
    for (c, read, _), exc in zip(writes, errors):
        if exc is None:
            c.committed_at(cursor, stream_bytes, read)
    raise_first(errors)


# Whether a pass reads and parses ahead in a helper thread.  None: when this process may use more than one
# core.  A pool worker sets it (parallel.worker_threads): off when the other cores run other workers.
PARSE_THREADS: bool | None = None


def parse_threads() -> bool:
    """Whether this process's passes read and parse ahead in a helper thread (see :mod:`.prefetch`)."""
    return usable_cores() > 1 if PARSE_THREADS is None else PARSE_THREADS


def _then(first: Callable[[Any], Any], second: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda item: second(first(item))


class Dispatch:
    """Delivers the stream's events to the consumers that are in step with it."""

    def __init__(self) -> None:
        self.all: list[Consumer] = []
        self.trades_to: list[Consumer] = []  # trades a minute at a time
        self.chunk_trades_to: list[Consumer] = []  # trades a chunk at a time (Indicator.trades_by_minute False)
        self.advance_to: list[Consumer] = []
        self.quality_to: list[Consumer] = []
        self.failures: list[Failure] = []  # indicators that raised, taken out of the dispatch
        self.dropped: list[Consumer] = []

    def fail(self, c: Consumer, exc: BaseException, hook: str) -> None:
        """Take ``c`` out for the rest of the run, its outputs cut back to its last commit.

        The lists are replaced, not changed in place, so a loop over one of
        them goes on with the consumers after ``c``.  Its state file is left as
        it was: the next run finds it behind the others and catches it up.
        """
        drop = lambda cs: [x for x in cs if x is not c]  # noqa: E731
        self.all, self.trades_to, self.chunk_trades_to = drop(self.all), drop(self.trades_to), drop(self.chunk_trades_to)
        self.advance_to, self.quality_to = drop(self.advance_to), drop(self.quality_to)
        self.dropped.append(c)
        c.cut_back()
        failure = exc if isinstance(exc, PluginFailure) else PluginFailure(c, exc, hook)
        self.failures.append(failure.failure)

    def add(self, c: Consumer) -> None:
        self.all.append(c)
        if c.wants_trades:
            (self.trades_to if c.trades_by_minute else self.chunk_trades_to).append(c)
        if c.wants_advance:
            self.advance_to.append(c)
        if c.wants_quality:
            self.quality_to.append(c)

    # An exception inside an indicator is that indicator's failure (a third-party bug must not stop the others)
    def quality(self, event: dict[str, Any]) -> None:
        for c in self.quality_to:
            try:
                c.indicator.on_quality(event, c.emit)
            except Exception as exc:
                self.fail(c, exc, "on_quality")

    def chunk_trades(self, batch: TradeBatch) -> None:
        """A chunk's trades, to the consumers that take them a chunk at a time (``trades_by_minute = False``)."""
        self._on_trades(self.chunk_trades_to, batch)

    def trades(self, batch: TradeBatch) -> None:
        """One minute's trades, to the consumers that take them a minute at a time."""
        self._on_trades(self.trades_to, batch)

    def _on_trades(self, consumers: list[Consumer], batch: TradeBatch) -> None:
        for c in consumers:
            try:
                c.indicator.on_trades(batch, c.emit)
            except Exception as exc:
                self.fail(c, exc, "on_trades")

    def bar(self, bar: Bar) -> None:
        for c in self.all:
            try:
                c.indicator.on_bar(bar, c.emit)
            except Exception as exc:
                self.fail(c, exc, "on_bar")
                continue
            c.last_bar = bar.minute

    def empty_bars(self, first: int, count: int, price: decimal.Decimal) -> None:
        """A run of filled empty minutes: :meth:`Indicator.on_empty_bars` of each consumer in turn (the
        consumers are independent, so the order across them is free)."""
        last = first + count - 1
        for c in self.all:
            if c.wants_bars:
                try:
                    c.indicator.on_empty_bars(first, count, price, c.emit)
                except Exception as exc:
                    self.fail(c, exc, "on_empty_bars")
                    continue
            c.last_bar = last

    def advance(self, minute: int) -> None:
        for c in self.advance_to:
            try:
                c.indicator.on_advance(minute, c.emit)
            except Exception as exc:
                self.fail(c, exc, "on_advance")

    def book(self, minute: BookMinute) -> None:
        for c in self.all:
            try:
                c.indicator.on_book(minute, c.emit)
            except Exception as exc:
                self.fail(c, exc, "on_book")
                continue
            c.last_bar = minute.minute


@dataclass
class Failure:
    """What an instrument, or one of its indicators, could not do; the rest of the run went on."""

    message: str  # what went wrong, where
    fix: str  # what to do about it
    indicator: str | None = None  # None: the instrument as a whole
    # "error": this instrument's (or indicator's) problem; "backfill": files it could not take in;
    # "stopped": the disk refused a write, the run stopped here
    kind: str = "error"

    def to_json(self) -> dict[str, Any]:
        return {"indicator": self.indicator, "kind": self.kind, "message": self.message, "fix": self.fix}


class PluginFailure(IndicatorError):
    """An exception raised inside an indicator's own code."""

    def __init__(self, c: "Consumer", exc: BaseException, hook: str) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f", {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        super().__init__(
            f"{c.name} for {c.key.label}: the indicator raised {detail} (in {hook}{where}); it was stopped for "
            "this instrument, its outputs and state stay as of its last commit, the other indicators went on"
        )
        self.failure = Failure(
            str(self),
            f"fix or update the indicator (or disable it: `enabled = false` under [plugins.{c.name}]) and run "
            "again: it catches up from its last commit",
            c.name,
        )


@dataclass
class InstrumentSummary:
    key: InstrumentKey
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    status: int = 1  # the exit status its failures call for (2: refused, e.g. another run holds it)
    kind: str = "trades"

    @property
    def error(self) -> str | None:
        """The failures' messages, one a line (``None``: nothing needs attention)."""
        return "\n".join(f.message for f in self.failures) or None

    @property
    def stopped(self) -> bool:
        """The instrument as a whole was not processed (its outputs and states are as they were)."""
        return any(f.indicator is None and f.kind != "backfill" for f in self.failures)


@dataclass
class RunSummary:
    instruments: list[InstrumentSummary] = field(default_factory=list)
    load_seconds: float = 0.0  # loading plugins, settings and instruments
    pass_seconds: float = 0.0  # the pass itself: states, new lines, indicators, commits
    skipped: list[Skipped] = field(default_factory=list)  # what discovery found under raw/ and did not read

    def total(self, counter: str) -> int:
        return sum(s.counters.get(counter, 0) for s in self.instruments)

    @property
    def failures(self) -> list[tuple[InstrumentKey, Failure]]:
        return [(s.key, f) for s in self.instruments for f in s.failures]

    @property
    def stopped(self) -> Failure | None:
        """The failure that stopped the whole run (the disk), if any."""
        return next((f for s in self.instruments for f in s.failures if f.kind == "stopped"), None)

    @property
    def failed(self) -> list["InstrumentSummary"]:
        return [s for s in self.instruments if s.failures]


@dataclass
class Host:
    """Plugins, settings and the instrument table of one run."""

    cfg: Config
    indicators: dict[str, type[Indicator]]
    settings: dict[str, PluginSetting]
    table: InstrumentTable
    # called after each commit of an instrument with {indicator: {output: committed length}} (signal delivery)
    on_commit: list[Callable[[InstrumentKey, dict[str, dict[str, int]]], None]] = field(default_factory=list)

    @classmethod
    def load(cls, cfg: Config) -> "Host":
        pm = make_plugin_manager()
        infos = collect_indicators(pm)
        indicators = {n: i.cls for n, i in infos.items()}
        settings = plugin_settings(cfg, indicators)
        table = InstrumentTable(collect_instruments(pm))
        for path in cfg.instruments_files:
            table.load_file(path)
        for inst_id, ic in cfg.instruments.items():
            table.add(Instrument(inst_id, ic.kind, ic.ct_val, ic.ct_val_ccy))
        return cls(cfg, indicators, settings, table)

    def consumers(
        self, vault: Path, key: InstrumentKey, inst: Instrument, failures: list[Failure] | None = None,
        kind: StreamKind = TRADES,
    ) -> list[Consumer]:
        """The quality log and the enabled indicators that ``kind`` feeds; one that cannot be set up goes to ``failures``."""
        fill = self.cfg.run.fill_empty_bars if kind is TRADES else False
        extra = kind.fingerprint_extra(self.cfg, inst.inst_id)
        out = []
        quality = kind.quality_log(inst)
        out.append(Consumer(vault, key, quality, {}, fingerprint({}, inst, fill, extra), fill,
                            kind.quality_state_file(vault, key), extra))
        for name, setting in self.settings.items():
            if not setting.enabled or self.indicators[name].consumes != kind.name:
                continue
            params = canonical_params(setting.params)
            if reads_records(self.indicators[name], setting.params):
                continue  # fed by records.RecordRun after the trade pass, not by trades
            try:
                indicator = self.indicators[name](inst, setting.params)
                out.append(Consumer(vault, key, indicator, params, fingerprint(params, inst, fill, extra), fill,
                                    fp_extra=extra))
            except Exception as exc:
                if failures is None:
                    raise
                failures.append(Failure(
                    f"{name} for {key.label}: the indicator could not be set up ({type(exc).__name__}: {exc}); "
                    "the other indicators went on",
                    f"fix or update the indicator (or disable it: `enabled = false` under [plugins.{name}]) and run "
                    "again: it catches up from its last commit", name))
        return out


class InstrumentRun:
    """One instrument's consumers and stream of one kind (trades or books), loaded once.

    A batch run makes one pass with it; a follower keeps it between passes,
    so the states are read once and the indicators stay in memory.  Whatever
    goes wrong with this instrument ends up in the summary :meth:`advance`
    returns (an indicator that fails is left out, the others go on); only an
    instrument that is not known at all raises, from the constructor.
    """

    def __init__(self, host: Host, vault: Path, key: InstrumentKey, folder: Path, kind: StreamKind = TRADES) -> None:
        self.host = host
        self.vault = vault
        self.key = key
        self.folder = folder
        self.kind = kind
        self.inst = host.table.get(key.inst_id)
        self.failures: list[Failure] = []  # found while loading, reported by the next advance
        self.consumers = []
        for c in host.consumers(vault, key, self.inst, self.failures, kind):
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
        self.records = record_run(host, vault, key, self.inst)  # indicators reading others' records

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
            if commit:
                self.records.run()  # record consumers follow what was just committed (SPEC section 12)
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
        threads = self.kind.parse_in_threads and parse_threads()
        ahead = map_ahead if todo > cfg.run.batch_bytes and threads else map_inline
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
                chunks = read_chunks(files, self.cursor, stop, cfg.run.batch_bytes, mapped=self.kind.reads_mapped)
                numbers = LineNumbers()
                for chunk, parsed in ahead(parse, chunks):
                    numbers.settle(chunk, parsed)
                    stream.process(parsed, _label(chunk.file.path, self.vault), self.dispatch)
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
            if clock is not None:
                stream.close_by_clock(clock(), grace_ms, self.dispatch)
            if commit:
                self.commit(files)
            else:
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
        summary.counters = {k: stream.counters[k] - start_counters.get(k, 0) for k in self.kind.counters}

    def _files(self) -> list[TradeFile]:
        """The trade files in stream order; those the cursors name stay listed even once archived."""
        return self.kind.list_files(self.host.cfg, self.folder, self.key.inst_id,
                                    [c.cursor for c in self.consumers] + [self.cursor])

    def commit(self, files: list[TradeFile] | None = None) -> None:
        """Outputs on disk, then every consumer's state with the read position (SPEC section 8).

        A consumer whose position and stream state are those of its last
        commit has nothing new: its state file is not written again (a run
        with nothing new writes nothing).
        """
        if self.stream is None or self.broken:
            return
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
    """One pass over each kind of stream of an instrument (a task of :mod:`.parallel`), in order."""
    done = []
    for name, folder in streams:
        done.append(run_instrument(host, vault, key, folder, progress, KINDS[name]))
        if any(f.kind == "stopped" for f in done[-1].failures):
            break  # the disk refused a write
    return done


def run_instrument(
    host: Host, vault: Path, key: InstrumentKey, folder: Path, progress: ProgressFactory = no_progress,
    kind: StreamKind = TRADES,
) -> InstrumentSummary:
    """One pass over an instrument's new lines of one kind, committed; what went wrong is in the summary, never raised."""
    try:
        run = InstrumentRun(host, vault, key, folder, kind)
    except UnknownInstrumentError as exc:
        return InstrumentSummary(key, failures=[unknown_instrument(exc, folder)])
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


def _instruments(host: Host, vault: Path, only: list[str] | None,
                 skipped: list[Skipped] | None = None) -> list[tuple[InstrumentKey, StreamKind, Path]]:
    # an unknown instrument is that instrument's failure, reported in the summary; the others run
    return discover_all(vault, host.cfg, only, skipped)


def by_instrument(found: list[tuple[InstrumentKey, StreamKind, Path]]) -> list[tuple[InstrumentKey, list[tuple[str, Path]]]]:
    """``(instrument, [(kind name, folder), ...])`` in discovery order: one task per instrument, every
    kind of stream of that instrument in it (so its record consumers see all of their producers)."""
    out: dict[InstrumentKey, list[tuple[str, Path]]] = {}
    for key, kind, folder in found:
        out.setdefault(key, []).append((kind.name, folder))
    return list(out.items())


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
        summary = RunSummary()
        summary.instruments = run_tasks(host, vault, by_instrument(_instruments(host, vault, only, summary.skipped)),
                                        progress, jobs, scheduler)
    finally:
        decimal.setcontext(previous)
    summary.load_seconds = loaded - started
    summary.pass_seconds = time.perf_counter() - loaded
    return summary


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


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
        summary = RunSummary()
        skipped: list[Skipped] = []
        instruments = _instruments(self.host, self.vault, self.only, skipped)
        summary.skipped = [s for s in skipped if s not in self.reported]
        self.reported.update(skipped)
        for key, kind, folder in instruments:
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
                    summary.instruments.append(InstrumentSummary(key, failures=[unknown_instrument(exc, folder)]))
                    continue
            done = run.advance(no_progress, clock, grace_ms, commit=commit)
            summary.instruments.append(done)
            if run.broken:
                self.failed.add((key, kind.name))
                del self.runs[key, kind.name]
            stopped = summary.stopped
            if stopped is not None:
                raise StorageError(stopped.message)
        self.in_pass = False
        return summary

    def commit_written(self, indicators: frozenset[str]) -> None:
        """Commit the instruments where one of ``indicators`` wrote a record since the last commit.

        Signals are delivered only once committed; this keeps their delay at one pass, not
        ``commit_seconds``.  Only between passes.
        """
        assert not self.in_pass
        for run in self.runs.values():
            # a record consumer named (confluence) follows its producers' commit: commit those too
            readers = [rc for rc in run.records.consumers if rc.c.name in indicators]
            names = indicators | {i.indicator for rc in readers for i in rc.inputs}
            if any(out.uncommitted() for c in run.consumers if c.name in names for out in c.outputs.values()):
                run.commit()
                run.close()
                if readers:
                    try:
                        run.records.run()
                    except IndicatorError:
                        pass  # the next committing pass runs the record phase again and reports it

    def commit(self) -> None:
        """Commit every instrument; only between passes."""
        assert not self.in_pass
        for run in self.runs.values():
            run.commit()
            run.close()
            run.records.run()


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
    from .watch import Wakeup

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
