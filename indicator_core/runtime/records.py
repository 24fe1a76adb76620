"""Indicators that read other indicators' records (SPEC section 12).

A record consumer declares its inputs (:meth:`Indicator.inputs`, a list of
:class:`~indicator_core.indicator.Input`) instead of reading trades.  After
an instrument's trade indicators have committed (and, in follow mode, after
every commit), :class:`RecordRun` runs each record consumer of the instrument:

1. For every input it reads the producer's state file
   (``state/{producer}/{exchange}/{market}/{INST}.state.json``): the committed
   length of the stream in ``"outputs"`` and ``"last_bar"``.  Only bytes up to
   the committed length are ever read, so a consumer never sees a record that
   a killed producer will write again.
2. The producer has *passed* every minute up to its ``last_bar`` and, for a
   one-record-per-minute stream, up to the minute of its last committed
   record.  Inputs that count (required ones; optional ones whose producer is
   enabled and has started or will start for the instrument) give the
   watermark ``W``: the least minute all of them have passed.  An input that
   counts and has passed nothing holds everything back.
3. The records of every minute up to ``W`` are handed to
   :meth:`Indicator.on_records`, minute by minute, all inputs of one minute
   in one call.
4. The consumer commits through :class:`~indicator_core.runtime.consumer.Consumer`
   like every indicator: outputs on disk, then its state file, which holds,
   per input, the byte offset delivered so far (and a hash of the line before
   it, to notice a producer rebuilt underneath), the indicator's own state
   and ``last_bar`` = ``W``, so record consumers can feed record consumers.

Because what is delivered for a minute depends only on the producers'
committed bytes, never on when they were committed, the outputs are
byte-identical under any cut (SPEC section 8).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from ..config import Config, PluginSetting, plugin_settings
from ..errors import ConfigError, IndicatorError, StateError
from ..indicator import Indicator, Input, Params
from ..instruments import Instrument
from ..integrity import FilesRead
from ..params import canonical_params
from ..plugins import collect_indicators, collect_input_kinds, make_plugin_manager
from ..sources.committed import InputReader
from ..sources.files import Cursor
from ..storage import InstrumentKey, read_state
from ..timeutil import iso_minute
from .consumer import Consumer, fingerprint
from .host import Host, reads_records

class RecordConsumer:
    """A record-consuming indicator of one instrument: an engine Consumer plus its input readers."""

    def __init__(self, consumer: Consumer, inputs: list[Input], settings: dict[str, PluginSetting], vault: Path,
                 cfg: Config) -> None:
        self.c = consumer
        self.cfg = cfg
        self.inputs = inputs
        self.settings = settings
        saved = (consumer.stream_state or {}).get("inputs", {}) if isinstance(consumer.stream_state, dict) else {}
        self.readers = [InputReader(vault, consumer.key, i, saved.get(i.name)) for i in inputs]
        self.vault = vault
        self.dirty = consumer.stream_state is None  # no state yet: write one, so status shows it

    def counts(self, r: InputReader) -> bool:
        """Whether an input holds the consumer back (see :class:`Input`)."""
        if r.inp.required:
            return True
        setting = self.settings.get(r.inp.indicator)
        if setting is None or not setting.enabled:
            return False
        return r.started or bool(r.inp.present and r.inp.present(self.vault, self.c.key, self.cfg))

    def refresh(self) -> tuple[list[InputReader], int | None]:
        """Read the producers' states; the inputs that count and the watermark (``None``: wait)."""
        counted = []
        for r in self.readers:
            if self.counts(r):
                r.refresh(self.c.name)
                counted.append(r)
        marks = [r.watermark() for r in counted]
        if not counted or any(m is None for m in marks):
            return counted, None
        return counted, min(marks)  # type: ignore[type-var]

    def run(self, commit_seconds: float) -> int:
        """Deliver every minute the inputs have passed; commit.  Returns the number of minutes delivered."""
        counted, w = self.refresh()
        delivered = 0
        if w is not None:
            for r in self.readers:  # an optional producer that does not hold back: what it did commit is final
                if r not in counted and read_state(r.state_file) is not None:
                    r.refresh(self.c.name)
                    counted.append(r)
            c = self.c
            passed = c.last_bar
            names = [i.name for i in self.inputs]
            last_commit = time.monotonic()
            while True:
                mins = [m for m in (r.peek() for r in counted) if m is not None and m <= w]
                if not mins:
                    break
                m = min(mins)
                records: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
                for r in counted:
                    while r.peek() == m:
                        rec = r.pop()
                        if passed is None or m > passed:
                            records[r.inp.name].append(rec)
                if passed is not None and m <= passed:
                    # records of an input that did not count when these minutes were passed (an
                    # optional producer enabled later): the minutes are final, the records are skipped
                    continue
                c.indicator.on_records(m, records, c.emit)
                passed = m
                delivered += 1
                self.dirty = True
                if time.monotonic() - last_commit >= commit_seconds:
                    self.commit()
                    last_commit = time.monotonic()
            if c.last_bar is None or w > c.last_bar:
                c.last_bar = w
                self.dirty = True
        if self.dirty:
            self.commit()
        return delivered

    def commit(self) -> None:
        stream = {"inputs": {r.inp.name: r.to_state() for r in self.readers}}
        self.c.commit(Cursor(), stream, orjson.dumps(stream), FilesRead())  # no trade files: no cursor, none read
        self.dirty = False

    def waiting(self) -> str | None:
        """What holds the consumer back, in words, or ``None`` when it is in step with its inputs."""
        parts, ahead = [], []
        counted, w = [], None
        try:
            counted, w = self.refresh()
        except StateError as exc:
            return f"{self.c.name} is stopped: {exc}"
        marks = {r.inp.name: r.watermark() for r in counted}
        for r in counted:
            m = marks[r.inp.name]
            if m is None:
                setting = self.settings.get(r.inp.indicator)
                why = ("not installed" if setting is None else "disabled" if not setting.enabled
                       else "nothing committed yet")
                parts.append(f"{r.inp.indicator} ({why})")
            elif m == w:
                parts.append(f"{r.inp.indicator} (last committed {iso_minute(m)})")
        if w is not None:
            top = max(marks.values())  # type: ignore[type-var]
            if top == w:
                return None
            ahead = [f"{r.inp.indicator} at {iso_minute(marks[r.inp.name])}" for r in counted if marks[r.inp.name] != w]
        else:
            ahead = [f"{r.inp.indicator} at {iso_minute(marks[r.inp.name])}" for r in counted
                     if marks[r.inp.name] is not None]
        text = f"{self.c.name} waits for {', '.join(dict.fromkeys(parts))}"
        return text + (f" — {', '.join(dict.fromkeys(ahead))}" if ahead else "")


def resolved_params(indicators: dict[str, type[Indicator]], settings: dict[str, PluginSetting]) -> dict[str, Params]:
    """Every indicator's parameters, those of record consumers passed through their ``resolve_params``."""
    given = {n: s.params for n, s in settings.items()}
    return {n: indicators[n].resolve_params(p, given) if reads_records(indicators[n], p) else p for n, p in given.items()}


def _order(host: Host) -> list[tuple[str, Params, list[Input]]]:
    """The enabled record consumers with their parameters and inputs, producers before consumers."""
    found: dict[str, list[Input]] = {}
    params = resolved_params(host.indicators, host.settings)
    for name, setting in host.settings.items():
        if setting.enabled and host.indicators[name].scope == "instrument":  # aggregates: runtime.aggregates
            inputs = host.indicators[name].inputs(params[name])
            if inputs:
                found[name] = inputs
    for name, inputs in found.items():
        for inp in inputs:
            if inp.indicator not in host.indicators:
                if inp.required:
                    raise ConfigError(
                        f"{name} reads {inp.stream} of indicator {inp.indicator!r}, which is not installed "
                        f"(installed: {', '.join(sorted(host.indicators))}); install it or disable {name} with "
                        f"[plugins.{name}] enabled = false"
                    )
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(n: str) -> None:
        if n in ordered:
            return
        if n in visiting:
            raise ConfigError(f"record consumers read each other in a circle ({n}); no order can run them")
        visiting.add(n)
        for inp in found[n]:
            if inp.indicator in found:
                visit(inp.indicator)
        visiting.discard(n)
        ordered.append(n)

    for n in sorted(found):
        visit(n)
    return [(n, params[n], found[n]) for n in ordered]


def _check_streams(host: Host, inst: Instrument, plan: list[tuple[str, Params, list[Input]]]) -> None:
    for name, _, inputs in plan:
        for inp in inputs:
            setting = host.settings.get(inp.indicator)
            if setting is None or not setting.enabled:
                if inp.required and setting is not None and not host.indicators[inp.indicator].enabled_by_default:
                    # an indicator that waits to be asked for: without it, this one would wait for ever
                    raise ConfigError(
                        f"{host.cfg.source}: plugins.{name}: reads {inp.stream} of {inp.indicator}, which is not "
                        f"enabled; enable it (`[plugins.{inp.indicator}] enabled = true`) or change {name}'s settings"
                    )
                continue
            streams = host.indicators[inp.indicator](inst, setting.params).outputs()
            if inp.stream not in streams:
                raise ConfigError(
                    f"{host.cfg.source}: plugins.{name}: reads {inp.stream} of {inp.indicator}, but {inp.indicator} "
                    f"as configured writes {', '.join(streams) or 'nothing'}; make their settings agree (e.g. the "
                    "same timeframe)"
                )


class RecordRun:
    """The record consumers of one instrument, loaded once (a follower keeps them between passes)."""

    def __init__(self, host: Host, vault: Path, key: InstrumentKey, inst: Instrument, readonly: bool = False) -> None:

        self.host = host
        self.vault = vault
        self.key = key
        plan = _order(host)
        if plan:
            _check_streams(host, inst, plan)
        fill = host.cfg.run.fill_empty_bars
        self.consumers: list[RecordConsumer] = []
        for name, resolved, inputs in plan:
            params = canonical_params(resolved)
            indicator = host.indicators[name](inst, resolved)
            c = Consumer(vault, key, indicator, params, fingerprint(params, inst, fill), fill)
            if readonly:  # `indicators status`: read the state, leave the files alone
                state = read_state(c.state_file)
                if state is not None and state.get("fingerprint") != c.fingerprint:
                    continue  # written under other settings than those given: nothing to say about it
                if state is not None:
                    c.stream_state, c.last_bar = state.get("stream"), state.get("last_bar")
            else:
                c.load(vault)
            self.consumers.append(RecordConsumer(c, inputs, host.settings, vault, host.cfg))

    def run(self) -> int:
        """Deliver what every record consumer's inputs have committed, and commit; the minutes delivered."""
        return sum(run_consumers(self.host, self.key, self.consumers))

    def waiting(self) -> list[str]:
        return [w for rc in self.consumers if (w := rc.waiting()) is not None]


def run_consumers(host: Host, key: InstrumentKey, consumers: list[RecordConsumer]) -> list[int]:
    """Run record consumers in order, each committed and its commit told to ``host.on_commit``; the minutes each
    delivered.  A write the disk refuses is raised as an :class:`IndicatorError` naming the file."""
    minutes = []
    for rc in consumers:
        try:
            minutes.append(rc.run(host.cfg.run.commit_seconds))
            if host.on_commit:  # what is committed now, e.g. for signal delivery in follow mode
                lengths = {rc.c.name: {s: out.length for s, out in rc.c.outputs.items()}}
                for listener in host.on_commit:
                    listener(key, lengths)
        except OSError as exc:
            for out in rc.c.outputs.values():
                out.discard()
            raise IndicatorError(
                f"{key.label}: {rc.c.name}: {exc.strerror or exc} ({exc.filename or 'output'}); the run "
                "stopped. Outputs and state are as of the last commit: fix the cause and run again"
            ) from exc
        finally:
            rc.c.close()
    return minutes


def record_run(host: Host, vault: Path, key: InstrumentKey, inst: Instrument) -> RecordRun:
    """The instrument's :class:`RecordRun`, one per host: every input kind's run of the instrument shares it."""
    runs = host.record_runs
    rr = runs.get((vault, key))
    if rr is None:
        rr = runs[vault, key] = RecordRun(host, vault, key, inst)
    return rr


# --- helpers for the command line ------------------------------------------------------------
def consumers_of(cfg: Config, names: list[str]) -> dict[str, list[str]]:
    """The installed indicators that read (directly or through others) any of ``names``.

    Returns ``{consumer: [the producers among names and consumers it reads]}``, so
    that ``indicators reset`` can reset them too and say why.  Disabled consumers
    are included: their saved positions point into the producers' old files.
    """
    pm = make_plugin_manager()
    kinds = collect_input_kinds(pm)
    indicators = {n: i.cls for n, i in collect_indicators(pm, kinds).items()}
    settings = plugin_settings(cfg, indicators)
    params = resolved_params(indicators, settings)
    reads = {n: [i.indicator for i in cls.inputs(params[n])]
             + list(getattr(kinds.get(cls.consumes), "reads_outputs", ())) for n, cls in indicators.items()}
    out: dict[str, list[str]] = {}
    hit = set(names)
    changed = True
    while changed:
        changed = False
        for n, producers in sorted(reads.items()):
            why = [p for p in dict.fromkeys(producers) if p in hit]
            if why and n not in hit:
                out[n] = why
                hit.add(n)
                changed = True
    return out


def describe_waits(vault: Path, cfg: Config, host: Host | None = None) -> dict[tuple[str, str], str]:
    """``{(instrument label, consumer): "confluence waits for buckets (last committed ...) — volume at ..."}``."""
    if host is None:
        host = Host.load(cfg)
    plan = _order(host)
    if not plan:
        return {}
    keys: set[InstrumentKey] = set()
    for path in (vault / "state").glob("*/*/*/*.state.json"):
        exchange, market = path.parts[-3:-1]
        keys.add(InstrumentKey(exchange, market, path.name.removesuffix(".state.json")))
    out: dict[tuple[str, str], str] = {}
    for key in sorted(keys, key=lambda k: k.label):
        try:
            inst = host.table.get(key.inst_id)
            rr = RecordRun(host, vault, key, inst, readonly=True)
        except IndicatorError:
            continue
        for rc in rr.consumers:
            text = rc.waiting()
            rc.c.close()
            if text is not None:
                out[(key.label, rc.c.name)] = text
    return out
