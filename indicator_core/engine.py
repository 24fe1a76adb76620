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

import decimal
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from .bars import Bar
from .config import Config, PluginSetting, plugin_settings
from .errors import FingerprintMismatch, IndicatorError, StateError, os_error_message
from .indicator import Indicator
from .instruments import Instrument, InstrumentTable
from .lock import VaultLock
from .numbers import EXACT
from .params import canonical_params
from .prefetch import map_ahead, map_inline
from .plugins import collect_indicators, collect_instruments, make_plugin_manager
from .progress import ProgressFactory, no_progress
from .sources.files import Cursor, TradeFile, at_end, list_files, position, read_chunks, remaining_bytes
from .storage import InstrumentKey, OutputFile, derived_dir, read_state, state_path, write_state
from .stream import COUNTERS
from .streams import StreamKind, discover_all
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
        self.last_bar: int | None = None
        folder = derived_dir(vault, self.name, key)
        self.outputs = {s: OutputFile(folder / f"{s}.jsonl", 0) for s in indicator.outputs()}
        cls = type(indicator)
        self.wants_trades = cls.on_trades is not Indicator.on_trades
        self.wants_advance = cls.on_advance is not Indicator.on_advance
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
                    "Mixing two definitions in one file is refused. Either restore the old settings, or rebuild "
                    f"this indicator from the start of the trades with:\n"
                    f"  {self.reset_command(vault)}"
                )
            for s, n in lengths.items():
                if s in self.outputs:
                    self.outputs[s].length = n
            self.cursor = Cursor.from_state(state["cursor"])
            self.stream_state = state["stream"]
            self.last_bar = state.get("last_bar")
            self.indicator.set_state(state["plugin"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"state file {self.state_file} is incomplete ({exc!r}); rebuild with `{self.reset_command(vault)}`"
            ) from exc
        for out in self.outputs.values():
            out.recover()

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

    def commit(self, cursor: Cursor, stream: dict[str, Any]) -> None:
        lengths = {s: out.flush() for s, out in self.outputs.items()}
        write_state(self.state_file, {
            "indicator": self.name,
            "indicator_version": type(self.indicator).version,
            "inst_id": self.key.inst_id,
            "fingerprint": self.fingerprint,
            "params": self.params,
            "cursor": cursor.to_state(),
            "last_bar": self.last_bar,
            "last_bar_utc": iso_minute(self.last_bar) if self.last_bar is not None else None,
            "stream": stream,
            "outputs": lengths,
            "plugin": self.indicator.get_state(),
        })
        self.cursor = cursor

    def close(self) -> None:
        for out in self.outputs.values():
            out.close()


class Dispatch:
    """Delivers the stream's events to the consumers that are in step with it."""

    def __init__(self) -> None:
        self.all: list[Consumer] = []
        self.trades_to: list[Consumer] = []
        self.advance_to: list[Consumer] = []
        self.quality_to: list[Consumer] = []

    def add(self, c: Consumer) -> None:
        self.all.append(c)
        if c.wants_trades:
            self.trades_to.append(c)
        if c.wants_advance:
            self.advance_to.append(c)
        if c.wants_quality:
            self.quality_to.append(c)

    def quality(self, event: dict[str, Any]) -> None:
        for c in self.quality_to:
            c.indicator.on_quality(event, c.emit)

    def trades(self, batch: TradeBatch) -> None:
        for c in self.trades_to:
            c.indicator.on_trades(batch, c.emit)

    def bar(self, bar: Bar) -> None:
        for c in self.all:
            c.indicator.on_bar(bar, c.emit)
            c.last_bar = bar.minute

    def advance(self, minute: int) -> None:
        for c in self.advance_to:
            c.indicator.on_advance(minute, c.emit)

    def book(self, minute: BookMinute) -> None:
        for c in self.all:
            c.indicator.on_book(minute, c.emit)
            c.last_bar = minute.minute


@dataclass
class InstrumentSummary:
    key: InstrumentKey
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    seconds: float = 0.0
    kind: str = "trades"


@dataclass
class RunSummary:
    instruments: list[InstrumentSummary] = field(default_factory=list)
    load_seconds: float = 0.0  # loading plugins, settings and instruments
    pass_seconds: float = 0.0  # the pass itself: states, new lines, indicators, commits

    def total(self, counter: str) -> int:
        return sum(s.counters.get(counter, 0) for s in self.instruments)


@dataclass
class Host:
    """Plugins, settings and the instrument table of one run."""

    cfg: Config
    indicators: dict[str, type[Indicator]]
    settings: dict[str, PluginSetting]
    table: InstrumentTable

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

    def consumers(self, vault: Path, key: InstrumentKey, inst: Instrument, kind: StreamKind = TRADES) -> list[Consumer]:
        """The quality log and the enabled indicators that ``kind`` feeds."""
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
            indicator = self.indicators[name](inst, setting.params)
            out.append(Consumer(vault, key, indicator, params, fingerprint(params, inst, fill, extra), fill,
                                fp_extra=extra))
        return out


class InstrumentRun:
    """One instrument's consumers and stream of one kind (trades or books), loaded once.

    A batch run makes one pass with it; a follower keeps it between passes,
    so the states are read once and the indicators stay in memory.
    """

    def __init__(self, host: Host, vault: Path, key: InstrumentKey, folder: Path, kind: StreamKind = TRADES) -> None:
        self.host = host
        self.vault = vault
        self.key = key
        self.folder = folder
        self.kind = kind
        self.inst = host.table.get(key.inst_id)
        self.consumers = host.consumers(vault, key, self.inst, kind)
        for c in self.consumers:
            c.load(vault)
        self.stream: Any = None  # kind.new_stream(): a TradeStream, a BookStream
        self.cursor = Cursor()  # the read position (a consumer's cursor is its committed one)
        self.dispatch = Dispatch()
        self.waiting: list[Consumer] = []  # behind the read position: they join when it reaches them

    def advance(self, progress: ProgressFactory = no_progress, clock: Callable[[], int] | None = None,
                grace_ms: int = 0, commit: bool = True) -> InstrumentSummary:
        """Read and process what is new, then commit (or, with ``commit=False``, only write the records).

        With a ``clock`` (follow mode: epoch ms now), bars whose end plus
        ``grace_ms`` has passed are closed at the end of the pass even without
        a later trade.  Records written without a commit are cut back and
        written again by the next run if this process dies before committing.
        """
        started = time.perf_counter()
        cfg = self.host.cfg
        summary = InstrumentSummary(self.key, dict.fromkeys(self.kind.counters, 0), kind=self.kind.name)
        files = self._files()
        if not files:
            return summary
        if self.stream is None:
            order = sorted(self.consumers, key=lambda c: position(files, c.cursor))
            self.stream = self.kind.new_stream(self.inst, cfg)
            if order[0].stream_state is not None:
                self.stream.set_state(order[0].stream_state)
            self.cursor = order[0].cursor
            self.waiting = order
        stream = self.stream
        start_counters = dict(stream.counters)
        todo = remaining_bytes(files, self.cursor)
        bar = progress(todo, self.key.inst_id)
        # threads only for more than one chunk, and for a parser that leaves the GIL (numpy) most of the time
        ahead = map_ahead if todo > cfg.run.batch_bytes and self.kind.parse_in_threads else map_inline
        try:
            while True:
                waiting = self.waiting
                while waiting and position(files, waiting[0].cursor) == position(files, self.cursor):
                    self.dispatch.add(waiting.pop(0))
                stop = waiting[0].cursor if waiting else None
                last_commit = time.monotonic()
                chunks = read_chunks(files, self.cursor, stop, cfg.run.batch_bytes)
                for chunk, parsed in ahead(self.kind.parser(cfg, self.key.inst_id), chunks):
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
        except OSError as exc:
            for c in self.consumers:
                for out in c.outputs.values():
                    out.discard()
            raise IndicatorError(f"{self.key.label}: " + os_error_message(
                exc, "the run stopped", after="outputs and state are as of the last commit, the next run continues from there"
            )) from exc
        finally:
            bar.close()
            self.close()
        summary.counters = {k: stream.counters[k] - start_counters.get(k, 0) for k in self.kind.counters}
        summary.seconds = time.perf_counter() - started
        return summary

    def _files(self) -> list[TradeFile]:
        """The trade files in stream order; those the cursors name stay listed even once archived."""
        return list_files(self.folder, self.key.inst_id, self.kind.patterns(self.host.cfg),
                          [c.cursor for c in self.consumers] + [self.cursor])

    def commit(self, files: list[TradeFile] | None = None) -> None:
        """Outputs on disk, then every consumer's state with the read position (SPEC section 8)."""
        if self.stream is None:
            return
        if files is None:
            files = self._files()
        cursor = at_end(files, self.cursor)
        state = self.stream.to_state()
        for c in self.dispatch.all:
            c.commit(cursor, state)

    def close(self) -> None:
        for c in self.consumers:
            c.close()


def run_instrument(
    host: Host, vault: Path, key: InstrumentKey, folder: Path, progress: ProgressFactory = no_progress,
    kind: StreamKind = TRADES,
) -> InstrumentSummary:
    """One pass over an instrument's new lines of one kind, committed."""
    return InstrumentRun(host, vault, key, folder, kind).advance(progress)


def _label(path: Path, vault: Path) -> str:
    """How the rejects log names a trade file: relative to the vault, with ``/``."""
    return path.relative_to(vault).as_posix() if path.is_relative_to(vault) else path.as_posix()


def _instruments(host: Host, vault: Path, only: list[str] | None) -> list[tuple[InstrumentKey, StreamKind, Path]]:
    instruments = discover_all(vault, host.cfg, only)
    for key, _, _ in instruments:
        host.table.get(key.inst_id)  # an unknown instrument stops the run before any work
    return instruments


def run(
    vault: Path, cfg: Config, only: list[str] | None = None, progress: ProgressFactory = no_progress
) -> RunSummary:
    """One pass over every instrument under the vault (or those in ``only``)."""
    started = time.perf_counter()
    host = Host.load(cfg)
    loaded = time.perf_counter()
    previous = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    try:
        with VaultLock(vault):
            summary = RunSummary()
            for key, kind, folder in _instruments(host, vault, only):
                summary.instruments.append(run_instrument(host, vault, key, folder, progress, kind))
    finally:
        decimal.setcontext(previous)
    summary.load_seconds = loaded - started
    summary.pass_seconds = time.perf_counter() - loaded
    return summary


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Follower:
    """What ``run --follow`` keeps between passes: every instrument's :class:`InstrumentRun`."""

    def __init__(self, host: Host, vault: Path, only: list[str] | None = None) -> None:
        self.host = host
        self.vault = vault
        self.only = only
        self.runs: dict[tuple[InstrumentKey, str], InstrumentRun] = {}
        self.in_pass = False  # False between passes: every run is at a point that may be committed

    def step(self, clock: Callable[[], int], grace_ms: int, commit: bool) -> RunSummary:
        """One pass over every instrument (new ones included)."""
        self.in_pass = True
        summary = RunSummary()
        for key, kind, folder in _instruments(self.host, self.vault, self.only):
            run = self.runs.get((key, kind.name))
            if run is None:
                run = self.runs[key, kind.name] = InstrumentRun(self.host, self.vault, key, folder, kind)
            summary.instruments.append(run.advance(no_progress, clock, grace_ms, commit=commit))
        self.in_pass = False
        return summary

    def commit(self) -> None:
        """Commit every instrument; only between passes."""
        assert not self.in_pass
        for run in self.runs.values():
            run.commit()
            run.close()


def follow(
    vault: Path, cfg: Config, only: list[str] | None = None, poll_seconds: float = 1.0, grace_seconds: float = 5.0,
    on_pass: Callable[[RunSummary], None] | None = None, clock: Callable[[], int] = wall_clock_ms,
) -> None:
    """Pass after pass as lines are appended, until interrupted (Ctrl-C / SIGTERM).

    Each pass writes its records at once (readers of the outputs see them);
    outputs and states are committed every ``commit_seconds`` and when the
    follower is stopped between passes.  A follower stopped inside a pass,
    or killed, leaves the last commit, from which the next run redoes the
    same bytes.  Bars also close when the wall clock passes their end plus
    ``grace_seconds``; a trade arriving after that for such a minute is late
    (SPEC section 2).
    """
    host = Host.load(cfg)
    previous = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    try:
        with VaultLock(vault):
            follower = Follower(host, vault, only)
            last_commit = time.monotonic()
            try:
                while True:
                    due = time.monotonic() - last_commit >= cfg.run.commit_seconds
                    summary = follower.step(clock, int(grace_seconds * 1000), commit=due)
                    if due:
                        last_commit = time.monotonic()
                    if on_pass is not None:
                        on_pass(summary)
                    time.sleep(poll_seconds)
            except KeyboardInterrupt:
                if not follower.in_pass:
                    follower.commit()
                raise
    finally:
        decimal.setcontext(previous)
