"""The derivatives stream (SPEC section 17): pushes in line order, one closed minute of derivatives out.

:class:`DerivsStream` takes the items of :mod:`indicator_core.sources.derivs_lines`
(open interest, funding, liquidations) and keeps, per minute, what they say.
A minute is **closed** once an item ``late_seconds`` past its end has been read
(the venues' feeds are not strictly in time order: OKX says so of its
liquidations); an item for a closed minute is *late*: counted, logged, not
applied (outputs are append-only).  Closing depends only on the items before
it in line order, so it is the same under any cut of the input.

Closed minutes are handed to the indicators in runs (:class:`~.derivs_batch.DerivsMinutes`,
the ``on_derivs_minutes`` event; ``on_derivs`` gets them one at a time), a minute once the
instrument's ``volume_1m`` has passed it too, when the volume analyzer is enabled and the
instrument has trades: its record's ``close`` prices the open interest (``oi_quote``).  The closes are
read from the committed records only (:class:`~indicator_core.sources.committed.InputReader`),
so what a minute carries never depends on when the trades were read.

Within a minute the order of items does not matter: the last open interest
and funding are those with the greatest ``ts`` (the later line on a tie),
liquidations are summed, and a repeated push (the same liquidation, the same
value at the same ``ts``) is a duplicate, counted and not added twice.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..decimal_columns import Decimals, join_text
from ..errors import StateError
from ..indicator import Input
from ..instruments import Instrument
from ..sources.committed import InputReader
from ..sources.derivs_lines import OiRun, OkxColumns, ParsedDerivs
from ..sources.parsed import Reject
from ..storage import InstrumentKey, read_state, state_path
from ..timeutil import MINUTE_MS, iso_minute, iso_ms, minute_of_iso
from .derivs_batch import NONE, Carry, MinuteRows, closed_minutes, concat_rows, rows_before
from .derivs_columns import Summed, sum_up
from .derivs_events import DerivsMinute, Liquidation  # noqa: F401  (their home for the public API)

COUNTERS = ("lines", "items", "oi", "funding", "liquidations", "duplicates", "late", "other_inst", "other_channel",
            "rejects", "minutes")

# where a minute's close price comes from (SPEC 17: "the minute's close price from volume_1m")
PRICE_INPUT = Input("volume", "volume_1m")
ROUTED = "derivs_routed"  # the liquidations a folder named in [derivs] liquidations_from hands on


class DerivsSink(Protocol):
    def quality(self, event: dict[str, Any]) -> None: ...
    def deliver(self, route: str, *args: Any, minute: int | None = None) -> None: ...


def _newer(old_ts: int | None, ts: int) -> bool:
    return old_ts is None or ts >= old_ts


class _Minute:
    """The items of one open (or closed, not yet handed on) minute."""

    __slots__ = ("oi", "funding", "next_ms", "interval", "liqs", "seen", "sums", "foreign")

    def __init__(self) -> None:
        self.oi: list | None = None  # [ts, oi, oi_ccy]
        self.funding: list | None = None  # [ts, rate]
        self.next_ms: list | None = None  # [ts, next funding time]
        self.interval: list | None = None  # [ts, interval ms]
        self.liqs: list[list] = []  # [ts, side, px, sz]
        self.seen: set[tuple] = set()  # the liquidations' keys (a repeated push is a duplicate)
        self.sums: list | None = None  # [ts, long, short]: the minute's liquidations as a history gives them
        self.foreign: list[list] = []  # [ts, inst_id, side, px, sz] of other instruments

    def to_state(self) -> list:
        return [self.oi, self.funding, self.next_ms, self.interval, self.liqs, self.sums, self.foreign]

    @classmethod
    def from_state(cls, data: list) -> "_Minute":
        m = cls()
        m.oi, m.funding, m.next_ms, m.interval, m.liqs = data[0], data[1], data[2], data[3], [list(x) for x in data[4]]
        m.seen = {tuple(x) for x in m.liqs}
        m.sums = data[5] if len(data) > 5 else None
        m.foreign = [list(x) for x in data[6]] if len(data) > 6 else []
        return m


def minute_rows(minutes: list[tuple[int, "_Minute"]]) -> MinuteRows:
    """Minutes of items gathered one by one (ascending) as the rows :func:`closed_minutes` reads."""
    if not minutes:
        return MinuteRows.empty()
    none = NONE

    def times(get) -> np.ndarray:
        return np.array([none if v is None else v[0] for v in map(get, (acc for _, acc in minutes))], dtype=np.int64)

    accs = [acc for _, acc in minutes]
    liqs = [(m, liq) for m, acc in minutes for liq in acc.liqs]
    return MinuteRows(
        np.array([m for m, _ in minutes], dtype=np.int64),
        times(lambda a: a.oi), Decimals.of_texts([a.oi[1] if a.oi else None for a in accs]),
        Decimals.of_texts([a.oi[2] if a.oi else None for a in accs]),
        times(lambda a: a.funding), Decimals.of_texts([a.funding[1] if a.funding else None for a in accs]),
        times(lambda a: a.next_ms), np.array([a.next_ms[1] if a.next_ms else none for a in accs], dtype=np.int64),
        times(lambda a: a.interval), np.array([a.interval[1] if a.interval else none for a in accs], dtype=np.int64),
        np.array([m for m, _ in liqs], dtype=np.int64), np.array([x[0] for _, x in liqs], dtype=np.int64),
        np.array([x[1] == "long" for _, x in liqs], dtype=bool),
        Decimals.of_texts([x[2] for _, x in liqs]), Decimals.of_texts([x[3] for _, x in liqs]),
        {m: (a.sums[1], a.sums[2]) for m, a in minutes if a.sums is not None},
        {m: sorted(tuple(x) for x in a.foreign) for m, a in minutes if a.foreign},
    )


class Prices:
    """The minute closes of ``volume_1m`` as committed (SPEC 17's ``oi_quote``), when they count."""

    def __init__(self, vault: Path | None = None, key: InstrumentKey | None = None, counts: bool = False) -> None:
        self.counts = counts and vault is not None
        self.reader = InputReader(vault, key, PRICE_INPUT, None) if self.counts else None
        self.last: tuple[int, str] | None = None  # the last record read: (minute, close)
        self.held: int | None = None  # the watermark read last

    def passed(self) -> int | None:
        """The last minute the closes are known for (``None``: none yet); only called when they count.

        A volume state that cannot be read now (damaged, being rebuilt) holds the minutes back as a record
        consumer's input would: the volume analyzer's own failure says what to do."""
        assert self.reader is not None
        try:
            read_state(self.reader.state_file)
        except StateError:
            return self.held
        self.reader.refresh("derivs")  # a volume rebuilt underneath: derivs must be rebuilt too (it says how)
        self.held = self.reader.watermark()
        return self.held

    def close(self, minute: int) -> Decimal | None:
        r = self.reader
        if r is None:
            return None
        while True:
            nxt = r.peek()
            if nxt is None or nxt > minute:
                break
            rec = r.pop()
            self.last = (nxt, rec.get("close"))
        if self.last is not None and self.last[0] == minute and self.last[1] is not None:
            return Decimal(self.last[1])
        return None

    def closes(self, first: int, count: int) -> list[str | None]:
        """The close of each minute ``first .. first + count - 1`` as text (``None``: none)."""
        if self.reader is None:
            return [None] * count
        out = []
        for minute in range(first, first + count):
            value = self.close(minute)
            out.append(None if value is None else str(value))
        return out

    def to_state(self) -> dict[str, Any] | None:
        if self.reader is None:
            return None
        return {**self.reader.to_state(), "last": list(self.last) if self.last else None}

    def set_state(self, data: dict[str, Any] | None) -> None:
        if self.reader is None or not data:
            return
        self.reader.offset = self.reader.read_to = int(data["offset"])
        self.reader.tail = data.get("tail")
        self.reader.checked = self.reader.offset == 0
        self.last = tuple(data["last"]) if data.get("last") else None  # type: ignore[assignment]


class DerivsStream:
    """The derivatives stream state of one instrument (saved in every derivs consumer's state file)."""

    def __init__(self, late_seconds: int, inst: Instrument | None = None, source: str | None = None) -> None:
        self.late_ms = late_seconds * 1000
        self.inst = inst
        self.source = source
        self.max_ts: int | None = None
        self.closed: int | None = None  # minutes before it accept no item
        self.next_emit: int | None = None  # the first minute not yet handed on (None before the first item)
        self.minutes: dict[int, _Minute] = {}
        # the last known values, as of the close of the last minute handed on
        self.oi: list | None = None  # [ts, oi, oi_ccy]
        self.funding: list | None = None  # [ts, rate]
        self.next_ms: list | None = None  # [ts, next funding time]
        self.interval: list | None = None  # [ts, interval ms] from a push
        self.inferred: int | None = None  # the interval seen between two successive next funding times
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.prices = Prices()
        self.keep_foreign = False  # named in liquidations_from: other instruments' liquidations are handed on
        self.routers: dict[str, InputReader] = {}  # label -> the routed liquidations of a folder named there
        self.barrier = False  # minutes close by day, not by time (a history's files: Coinalyze)

    def bind(self, vault: Path, key: InstrumentKey, prices_count: bool, liquidations_from: list[str] = ()) -> None:
        """Where the closes come from, and the routed liquidations (called by the runtime before :meth:`set_state`).

        A folder named in ``liquidations_from`` hands on the liquidations of the other instruments its files
        hold (its quality log writes them, ``derivs_routed.jsonl``, as it closes its minutes); every other
        instrument of its exchange and market reads them from there, a minute once that folder has passed it.
        """
        self.prices = Prices(vault, key, prices_count)
        self.keep_foreign = key.label in liquidations_from
        self.routers = {}
        for label in liquidations_from:
            ex, mk, inst = label.split("/")
            if (ex, mk) != (key.exchange, key.market) or inst == key.inst_id:
                continue
            src = InstrumentKey(ex, mk, inst)
            state = state_path(vault, "quality", src)
            self.routers[label] = InputReader(vault, key, Input("quality", ROUTED, instrument=label, one_per_minute=False),
                                              None, state.with_name(f"{inst}.derivs.state.json"))

    # --- state -----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "derivs",
            "source": self.source,
            "max_ts": self.max_ts,
            "closed": self.closed,
            "next_emit": self.next_emit,
            "minutes": [[m, acc.to_state()] for m, acc in sorted(self.minutes.items())],
            "oi": self.oi, "funding": self.funding, "next_ms": self.next_ms, "interval": self.interval,
            "inferred": self.inferred,
            **({"barrier": True} if self.barrier else {}),
            "counters": self.counters,
            "prices": self.prices.to_state(),
            **({"routers": {k: r.to_state() for k, r in self.routers.items()}} if self.routers else {}),
        }

    def set_state(self, data: dict[str, Any]) -> None:
        self.source = data.get("source")
        self.max_ts = data["max_ts"]
        self.closed = data["closed"]
        self.next_emit = data["next_emit"]
        self.minutes = {int(m): _Minute.from_state(acc) for m, acc in data["minutes"]}
        self.oi, self.funding, self.next_ms, self.interval = data["oi"], data["funding"], data["next_ms"], data["interval"]
        self.inferred = data["inferred"]
        self.barrier = bool(data.get("barrier", False))
        self.counters = {**dict.fromkeys(COUNTERS, 0), **data["counters"]}
        self.prices.set_state(data.get("prices"))
        for label, saved in (data.get("routers") or {}).items():
            r = self.routers.get(label)
            if r is not None:
                r.offset = r.read_to = int(saved["offset"])
                r.tail = saved.get("tail")
                r.checked = r.offset == 0

    # --- items -----------------------------------------------------------------------
    def process(self, p: ParsedDerivs, file_label: str, sink: DerivsSink) -> None:
        c = self.counters
        summed = None
        if p.columns is not None:  # the compiled reader's items: summed up in bulk where nothing is late
            summed = sum_up(self, p.columns, p.items)
            if summed is None:
                p = p.columns.reference(p, self.keep_foreign)
            else:
                p.items = []  # taken with the minutes they are of (_take)
        if p.items or (summed is not None and (summed.max_ts >= 0 or summed.pending_items)):
            self.source = p.source
        if p.day_barrier:  # a history: the days before its file's are closed, and time does not close minutes
            day = minute_of_iso(p.day + "T00:00:00Z")
            if self.closed is None or day > self.closed:
                self.closed = day
            self.barrier = True
        for r in p.rejects:
            self._reject(file_label, r, sink)
        item_ = self._item
        for item in p.items:
            if type(item) is OiRun:
                self._run(item, file_label, sink)
            else:
                item_(item, file_label, sink)
        if summed is not None:
            self._take(summed, p.columns, file_label, sink)
        c["lines"] += p.lines
        c["other_inst"] += p.other_inst
        c["other_channel"] += p.other_channel
        rows = summed.rows if summed is not None and len(summed.rows) else None
        self._emit_closed(sink, rows)
        if rows is not None:  # the minutes not handed on yet wait with the others
            self._hold(rows, summed.raw)  # type: ignore[union-attr]

    def _take(self, summed: Summed, cols: OkxColumns, file_label: str, sink: DerivsSink) -> None:
        """A chunk summed up in columns: its items of minutes already held one by one, then the rest at once."""
        if self.next_emit is None and summed.first_minute >= 0:
            self.next_emit = summed.first_minute  # the minute of the chunk's first item, in line order
        for item in cols.subset(summed.pending).items(summed.pending_items):
            if type(item) is OiRun:
                self._run(item, file_label, sink)
            else:
                self._item(item, file_label, sink)
        c = self.counters
        for name, n in summed.counts.items():
            c[name] += n
        if summed.max_ts >= 0:
            self._see(summed.max_ts)

    def _hold(self, rows: MinuteRows, raw: dict[str, np.ndarray]) -> None:
        """The rows of minutes from ``next_emit`` on, as minutes of items (with the texts the venue wrote)."""
        assert self.next_emit is not None
        later = np.flatnonzero(rows.minute >= self.next_emit).tolist()
        if not later:
            return
        oi = dict(zip(later, raw["oi"][later].tolist()))
        rate = dict(zip(later, raw["rate"][later].tolist()))
        held = rows.liq_minute >= self.next_emit
        liq_at: dict[int, list[tuple]] = {}
        for m, ts, long, (pm, ps, sm, ss) in zip(rows.liq_minute[held].tolist(), rows.liq_ts[held].tolist(),
                                                  rows.liq_long[held].tolist(), raw["liq"][held].tolist()):
            liq_at.setdefault(m, []).append((ts, "long" if long else "short", join_text(pm, ps), join_text(sm, ss)))
        for i in later:
            acc = self.minutes[int(rows.minute[i])] = _Minute()
            if rows.oi_ts[i] != NONE:
                acc.oi = [int(rows.oi_ts[i]), join_text(oi[i][0], oi[i][1]), join_text(oi[i][2], oi[i][3])]
            if rows.funding_ts[i] != NONE:
                acc.funding = [int(rows.funding_ts[i]), join_text(rate[i][0], rate[i][1])]
            if rows.next_ts[i] != NONE:
                acc.next_ms = [int(rows.next_ts[i]), int(rows.next_ms[i])]
            if rows.interval_ts[i] != NONE:
                acc.interval = [int(rows.interval_ts[i]), int(rows.interval_ms[i])]
            for key in liq_at.get(int(rows.minute[i]), ()):
                acc.seen.add(key)
                acc.liqs.append(list(key))

    def _see(self, ts: int) -> int:
        """Take ``ts`` into the stream's time; the minute it belongs to."""
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
            closed = (ts - self.late_ms) // MINUTE_MS if not self.barrier else -1
            if self.closed is None or closed > self.closed:
                self.closed = closed
        minute = ts // MINUTE_MS
        if self.next_emit is None:
            self.next_emit = minute
        return minute

    def _late(self, item: tuple, file_label: str, sink: DerivsSink) -> None:
        self.counters["late"] += 1
        assert self.closed is not None and self.next_emit is not None
        sink.quality({"event": "late", "file": file_label, "line": item[-1], "channel": item[0],
                      "ts_utc": iso_ms(item[2]), "closed_before": iso_minute(max(self.closed, self.next_emit))})

    def _item(self, item: tuple, file_label: str, sink: DerivsSink) -> None:
        c = self.counters
        what, ts = item[0], item[2]
        if what == "fliq":
            if self.keep_foreign:
                self._foreign(item, file_label, sink)
            return
        c["items"] += 1
        minute = self._see(ts)
        if minute < self.closed or minute < self.next_emit:  # type: ignore[operator]
            self._late(item, file_label, sink)
            return
        acc = self.minutes.get(minute)
        if acc is None:
            acc = self.minutes[minute] = _Minute()
        if what == "oi":
            c["oi"] += 1
            new = [ts, item[3], item[4]]
            if acc.oi == new:
                c["duplicates"] += 1
            elif acc.oi is None or ts >= acc.oi[0]:
                acc.oi = new
        elif what == "funding":
            c["funding"] += 1
            rate, next_ms, interval = item[3], item[4], item[5]
            if rate is not None:
                if acc.funding == [ts, rate]:
                    c["duplicates"] += 1
                elif acc.funding is None or ts >= acc.funding[0]:
                    acc.funding = [ts, rate]
            if next_ms is not None and (acc.next_ms is None or ts >= acc.next_ms[0]):
                acc.next_ms = [ts, next_ms]
            if interval is not None and (acc.interval is None or ts >= acc.interval[0]):
                acc.interval = [ts, interval]
        elif what == "liqsum":
            c["liquidations"] += 1
            new = [ts, item[3], item[4]]
            if acc.sums == new:
                c["duplicates"] += 1
            elif acc.sums is None or ts >= acc.sums[0]:
                acc.sums = new
        else:
            c["liquidations"] += 1
            key = (ts, item[3], item[4], item[5])
            if key in acc.seen:
                c["duplicates"] += 1
            else:
                acc.seen.add(key)
                acc.liqs.append(list(key))

    def _foreign(self, item: tuple, file_label: str, sink: DerivsSink) -> None:
        """Another instrument's liquidation, kept for its minute (never moving this stream's own time)."""
        minute = item[2] // MINUTE_MS
        if self.next_emit is None or self.closed is None or minute < self.closed or minute < self.next_emit:
            self._late(item, file_label, sink)
            return
        acc = self.minutes.get(minute)
        if acc is None:
            acc = self.minutes[minute] = _Minute()
        entry = [item[2], item[1], item[3], item[4], item[5]]
        if entry in acc.foreign:
            self.counters["duplicates"] += 1
        else:
            acc.foreign.append(entry)

    def _run(self, run: OiRun, file_label: str, sink: DerivsSink) -> None:
        """Open-interest pushes of one minute, in order of time: what pushing them one by one would do.

        All of them are late or none is (the run cannot close its own minute); the first compares with what
        the minute holds, each later one with the one before it (it replaced it, or equalled it).  A run
        that starts behind the minute's value is taken push by push."""
        first, last = run.first, run.last
        minute = first[2] // MINUTE_MS
        acc = self.minutes.get(minute)
        late = self.closed is not None and (minute < self.closed or (self.next_emit is not None and minute < self.next_emit))
        if late or (acc is not None and acc.oi is not None and first[2] < acc.oi[0]):
            for item in run.members():
                self._item(item, file_label, sink)
            return
        self._see(first[2])
        self._see(last[2])
        c = self.counters
        c["items"] += run.n
        c["oi"] += run.n
        c["duplicates"] += run.dups
        if acc is None:
            acc = self.minutes[minute] = _Minute()
        new = [first[2], first[3], first[4]]
        if acc.oi == new:
            c["duplicates"] += 1
        else:
            acc.oi = new
        if run.n - run.dups > 1:
            acc.oi = [last[2], last[3], last[4]]

    def _reject(self, file_label: str, r: Reject, sink: DerivsSink) -> None:
        self.counters["rejects"] += 1
        sink.quality({"event": "reject", "file": file_label, "line": r.line, "reason": r.reason, "text": r.text})

    # --- minutes ---------------------------------------------------------------------
    def _emit_closed(self, sink: DerivsSink, rows: MinuteRows | None = None) -> None:
        """Hand on every closed minute the closes have passed (all closed ones when they do not count)."""
        if self.next_emit is None or self.closed is None or self.next_emit >= self.closed:
            return
        until = self.closed  # exclusive
        if self.prices.counts:
            passed = self.prices.passed()
            if passed is None:
                return
            until = min(until, passed + 1)
        for label, r in self.routers.items():  # the folders that hand on liquidations: each must have passed it
            r.refresh("derivs")
            passed = r.watermark()
            if passed is None:
                return
            until = min(until, passed + 1)
        if self.next_emit < until:
            self._emit(until, sink, rows)

    def _emit(self, until: int, sink: DerivsSink, rows: MinuteRows | None = None) -> None:
        """Hand on the minutes from ``next_emit`` to ``until`` (exclusive) as one :class:`DerivsMinutes` run:
        those of ``self.minutes`` and those of ``rows`` (a chunk's minutes summed up in columns)."""
        first = self.next_emit
        assert first is not None
        count = until - first
        if self.routers:
            for minute in range(first, until):
                self._routed(minute)
        own = sorted(m for m in self.minutes if m < until)
        parts = [minute_rows([(m, self.minutes.pop(m)) for m in own])]
        if rows is not None:
            parts.append(rows_before(rows, until))
        carry = Carry(self.oi, self.funding, self.next_ms, self.interval, self.inferred)
        closes = self.prices.closes(first, count)
        batch = closed_minutes(concat_rows(parts), first, count, carry, self.inst, closes, self.source)
        self.oi, self.funding, self.next_ms, self.interval, self.inferred = (
            carry.oi, carry.funding, carry.next_ms, carry.interval, carry.inferred)
        self.counters["minutes"] += count
        self.next_emit = until
        sink.deliver("on_derivs_minutes", batch, minute=until - 1)

    def _routed(self, minute: int) -> None:
        """Add to the minute the liquidations the named folders handed on for this instrument (a repeat of
        one already here is a duplicate)."""
        inst_id = self.inst.inst_id if self.inst is not None else None
        acc = self.minutes.get(minute)
        for r in self.routers.values():
            while True:
                nxt = r.peek()
                if nxt is None or nxt > minute:
                    break
                rec = r.pop()
                if nxt < minute or rec.get("inst_id") != inst_id:
                    continue
                key = (int(rec["ts"]), rec["side"], rec["px"], rec["sz"])
                if acc is None:
                    acc = self.minutes[minute] = _Minute()
                if key in acc.seen:
                    self.counters["duplicates"] += 1
                    continue
                acc.seen.add(key)
                acc.liqs.append(list(key))
                self.counters["liquidations"] += 1

    def settle(self, sink: DerivsSink) -> None:
        """At the end of a pass: hand on the closed minutes the closes have passed since (the trades' pass of
        the instrument runs first, and may have moved on without a new derivs push)."""
        self._emit_closed(sink)

    def close_by_clock(self, now_ms: int, grace_ms: int, sink: DerivsSink) -> None:
        """Follow mode: minutes whose end plus ``grace_ms`` (at least ``late_seconds``) the clock has passed are closed."""
        if self.next_emit is None:
            return
        closed = (now_ms - max(grace_ms, self.late_ms)) // MINUTE_MS
        if self.closed is None or closed > self.closed:
            self.closed = closed
        self._emit_closed(sink)
