"""Closed derivatives minutes as columns: what the stream hands on at once (``Indicator.on_derivs_minutes``).

The derivatives stream closes minutes in runs (a chunk of a day's pushes
closes hundreds of them).  :class:`DerivsMinutes` holds such a run as
columns: per minute the last open interest, funding and next funding time at
its close (carried from minute to minute), its close price, and every
liquidation of the run with its contract terms applied, in order.  An
indicator that works on columns (the built-in ``derivs`` and
``liquidations``) reads them directly; one that overrides only
``on_derivs`` gets each minute as a :class:`DerivsMinute` (``events()``), which
is what the default ``on_derivs_minutes`` does.

:class:`MinuteRows` is the stream's side: the minutes that received items,
one row each, which :func:`closed_minutes` turns into a run with the values
carried over the minutes without items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Iterator

import numpy as np

from ..decimal_columns import Decimals
from ..instruments import INVERSE_BASE_PLACES, Instrument
from ..numbers import fmt
from ..timeutil import MINUTE_MS
from .derivs_events import DerivsMinute, Liquidation

NONE = -1  # an int64 column's "no value" (times and intervals are positive)


@dataclass
class LiquidationColumns:
    """Liquidations as columns, ordered by minute, then ``(ts, side, px, sz)`` (long before short, by value)."""

    ts: np.ndarray  # int64 ms
    long: np.ndarray  # bool: a long position was liquidated
    px: Decimals
    sz: Decimals
    base: Decimals
    quote: Decimals

    def __len__(self) -> int:
        return len(self.ts)

    def at(self, i: int) -> Liquidation:
        return Liquidation(int(self.ts[i]), "long" if self.long[i] else "short", _plain(self.px.at(i)),
                           _plain(self.sz.at(i)), _plain(self.base.at(i)), _plain(self.quote.at(i)))


def _plain(value: Decimal | None) -> Any:
    """A value as the same text gives it whatever the batch's scale (no trailing zeros)."""
    return None if value is None else Decimal(fmt(value))


@dataclass
class DerivsMinutes:
    """Consecutive closed minutes ``first .. first + count - 1`` of one instrument, as columns.

    Per minute: ``oi`` / ``oi_ccy`` / ``oi_ts`` (the last open interest at or
    before the close; null before the first), ``funding_rate`` / ``funding_ts``,
    ``next_funding_ms`` and ``funding_interval_ms`` (``NONE`` = -1 where not
    known), ``close`` (``volume_1m``'s, null where none); the liquidations of
    minute ``first + i`` are rows ``liq_starts[i]:liq_starts[i + 1]`` of
    ``liquidations``.  ``liq_sums`` (a history's summed liquidations, long and
    short quote) and ``foreign`` (other instruments' liquidations, see
    :class:`DerivsMinute`) are by index, only where there are any.
    """

    NONE: ClassVar[int] = NONE

    first: int
    count: int
    oi: Decimals
    oi_ccy: Decimals
    oi_ts: np.ndarray
    funding_rate: Decimals
    funding_ts: np.ndarray
    next_funding_ms: np.ndarray
    funding_interval_ms: np.ndarray
    close: Decimals
    liquidations: LiquidationColumns
    liq_starts: np.ndarray
    source: str | None = None
    liq_sums: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)
    foreign: dict[int, list[tuple]] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.count

    @property
    def minutes(self) -> np.ndarray:
        return np.arange(self.first, self.first + self.count, dtype=np.int64)

    @property
    def end_ms(self) -> np.ndarray:
        """Each minute's end (epoch ms)."""
        return (self.minutes + 1) * MINUTE_MS

    def event(self, i: int) -> DerivsMinute:
        """Minute ``first + i`` as one event."""
        def opt(col: np.ndarray) -> int | None:
            v = int(col[i])
            return None if v == NONE else v

        a, z = int(self.liq_starts[i]), int(self.liq_starts[i + 1])
        return DerivsMinute(
            self.first + i, _plain(self.oi.at(i)), _plain(self.oi_ccy.at(i)), opt(self.oi_ts),
            _plain(self.funding_rate.at(i)), opt(self.funding_ts), opt(self.next_funding_ms),
            opt(self.funding_interval_ms), [self.liquidations.at(k) for k in range(a, z)], _plain(self.close.at(i)),
            self.source, self.liq_sums.get(i), self.foreign.get(i, []))

    def events(self) -> Iterator[DerivsMinute]:
        for i in range(self.count):
            yield self.event(i)


# --- the stream's side ---------------------------------------------------------------------------------------------

@dataclass
class MinuteRows:
    """The minutes that received items, one row each (ascending, no minute twice): what each said.

    Times are ``NONE`` where the minute had no such item; the liquidations are
    the minutes' own, repeats already dropped, in any order (``liq_minute``)."""

    minute: np.ndarray
    oi_ts: np.ndarray
    oi: Decimals
    oi_ccy: Decimals
    funding_ts: np.ndarray
    rate: Decimals
    next_ts: np.ndarray
    next_ms: np.ndarray
    interval_ts: np.ndarray
    interval_ms: np.ndarray
    liq_minute: np.ndarray
    liq_ts: np.ndarray
    liq_long: np.ndarray
    liq_px: Decimals
    liq_sz: Decimals
    sums: dict[int, tuple[str, str]] = field(default_factory=dict)  # minute -> (long, short) as given
    foreign: dict[int, list[tuple]] = field(default_factory=dict)  # minute -> sorted (ts, inst, side, px, sz)

    @classmethod
    def empty(cls) -> "MinuteRows":
        z = np.zeros(0, dtype=np.int64)
        d = Decimals(z, 0)
        return cls(z, z, d, d, z, d, z, z, z, z, z, z, np.zeros(0, dtype=bool), d, d)

    def __len__(self) -> int:
        return len(self.minute)


def concat_rows(parts: list[MinuteRows]) -> MinuteRows:
    """Rows of disjoint minutes, in order of minute."""
    parts = [p for p in parts if len(p) or len(p.liq_ts) or p.sums or p.foreign]
    if not parts:
        return MinuteRows.empty()
    if len(parts) == 1:
        return parts[0]
    out = MinuteRows(*(np.concatenate([getattr(p, n) for p in parts]) if not isinstance(getattr(parts[0], n), Decimals)
                       else Decimals.concat([getattr(p, n) for p in parts]) for n in _COLUMNS))
    order = np.argsort(out.minute, kind="stable")
    if (order != np.arange(len(order))).any():
        out = _select(out, order)
    assert not len(out.minute) or (np.diff(out.minute) > 0).all(), "a minute in two parts"
    for p in parts:
        out.sums.update(p.sums)
        out.foreign.update(p.foreign)
    return out


def rows_before(rows: MinuteRows, until: int) -> MinuteRows:
    """The rows (and liquidations) of the minutes before ``until``."""
    if not len(rows.minute) or rows.minute[-1] < until:
        return rows
    out = _select(rows, np.flatnonzero(rows.minute < until), rows.liq_minute < until)
    out.sums = {m: v for m, v in rows.sums.items() if m < until}
    out.foreign = {m: v for m, v in rows.foreign.items() if m < until}
    return out


_COLUMNS = ("minute", "oi_ts", "oi", "oi_ccy", "funding_ts", "rate", "next_ts", "next_ms", "interval_ts", "interval_ms",
            "liq_minute", "liq_ts", "liq_long", "liq_px", "liq_sz")
_ROW_COLUMNS, _LIQ_COLUMNS = _COLUMNS[:10], _COLUMNS[10:]


def _select(rows: MinuteRows, index: np.ndarray, liq_index: np.ndarray | None = None) -> MinuteRows:
    """The rows at ``index`` and the liquidations at ``liq_index`` (all of them: None)."""
    def pick(name: str, at: np.ndarray | None) -> object:
        col = getattr(rows, name)
        if at is None:
            return col
        return col.take(at) if isinstance(col, Decimals) else col[at]

    return MinuteRows(**{n: pick(n, index) for n in _ROW_COLUMNS}, **{n: pick(n, liq_index) for n in _LIQ_COLUMNS},
                      sums=rows.sums, foreign=rows.foreign)


class Carry:
    """The last known values as of the close of the last minute handed on (saved in the stream's state as
    ``[ts, text, ...]`` lists, as they always were)."""

    def __init__(self, oi: list | None, funding: list | None, next_ms: list | None, interval: list | None,
                 inferred: int | None) -> None:
        self.oi, self.funding, self.next_ms, self.interval, self.inferred = oi, funding, next_ms, interval, inferred


def _sources(ts: np.ndarray, slot: np.ndarray, count: int) -> np.ndarray:
    """For each of ``count`` slots, the last slot at or before it whose row has a time in ``ts`` (the value that
    holds there; -1: none yet)."""
    idx = np.full(count, -1, dtype=np.int64)
    has = slot[ts != NONE]
    idx[has] = has
    return np.maximum.accumulate(idx) if count else idx


def closed_minutes(rows: MinuteRows, first: int, count: int, carry: Carry, inst: Instrument | None,
                   closes: list[str | None], source: str | None) -> DerivsMinutes:
    """The run of minutes ``first .. first + count - 1`` from the rows of those of them that had items
    (``rows``: exactly those, ascending), the values before it (``carry``, updated to its last minute) and
    the closes; the liquidations get the contract's terms (SPEC section 1)."""
    slot = (rows.minute - first).astype(np.int64)
    assert not len(slot) or (slot[0] >= 0 and slot[-1] < count), "rows outside the run"
    # --- open interest: the minute's own, else the last one before --------------------------------------------
    row_of = np.full(count, -1, dtype=np.int64)
    row_of[slot] = np.arange(len(slot))
    src = _sources(rows.oi_ts, slot, count)  # the slot whose open interest holds
    oi_ts = _pick(rows.oi_ts, row_of, src)
    oi, oi_ccy = _carried(rows.oi, rows.oi_ccy, row_of, src, carry.oi, oi_ts)
    if carry.oi is not None:
        oi_ts = np.where(src < 0, carry.oi[0], oi_ts)
    # --- funding ---------------------------------------------------------------------------------------------
    fsrc = _sources(rows.funding_ts, slot, count)
    funding_ts = _pick(rows.funding_ts, row_of, fsrc)
    rate, _ = _carried(rows.rate, None, row_of, fsrc, carry.funding, funding_ts)
    if carry.funding is not None:
        funding_ts = np.where(fsrc < 0, carry.funding[0], funding_ts)
    next_ms, inferred = _next_funding(rows, slot, count, carry)
    isrc = _sources(rows.interval_ts, slot, count)
    interval = _pick(rows.interval_ms, row_of, isrc)
    if carry.interval is not None:
        interval = np.where(isrc < 0, carry.interval[1], interval)
    interval = np.where(interval == NONE, inferred, interval)
    # --- the carry moves to the last minute --------------------------------------------------------------------
    if count:
        last = count - 1
        if src[last] >= 0:
            carry.oi = [int(oi_ts[last]), fmt(oi.at(last)), None if oi_ccy.at(last) is None else fmt(oi_ccy.at(last))]
        if fsrc[last] >= 0:
            carry.funding = [int(funding_ts[last]), fmt(rate.at(last))]
        if isrc[last] >= 0:
            r = row_of[isrc[last]]
            carry.interval = [int(rows.interval_ts[r]), int(rows.interval_ms[r])]
    # --- liquidations -----------------------------------------------------------------------------------------
    liqs, starts = _liquidations(rows, first, count, inst)
    sums = {int(m) - first: (Decimal(a), Decimal(b)) for m, (a, b) in rows.sums.items() if first <= m < first + count}
    foreign = {int(m) - first: v for m, v in rows.foreign.items() if first <= m < first + count}
    close = (Decimals(np.zeros(count, dtype=np.int64), 0, np.ones(count, dtype=bool))
             if not any(c is not None for c in closes) else Decimals.of_texts(closes))
    return DerivsMinutes(first, count, oi, oi_ccy, oi_ts, rate, funding_ts, next_ms, interval, close, liqs, starts,
                         source, sums, foreign)


def _pick(col: np.ndarray, row_of: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Per slot the column's value at the row of slot ``src`` (``NONE`` where ``src < 0``)."""
    if not len(col):
        return np.full(len(src), NONE, dtype=np.int64)
    return np.where(src >= 0, col[row_of[np.maximum(src, 0)]], NONE)


def _carried(col: Decimals, col2: Decimals | None, row_of: np.ndarray, src: np.ndarray, carry: list | None,
             ts: np.ndarray) -> tuple[Decimals, Decimals]:
    """A value column per slot: the row's at ``src``, the carried one before any (null before both)."""
    count = len(src)
    before = src < 0
    rows = row_of[np.maximum(src, 0)] if count else src
    out = []
    for k, c in enumerate((col, col2)):
        if c is None:
            out.append(Decimals(np.zeros(count, dtype=np.int64), 0, np.ones(count, dtype=bool)))
            continue
        text = carry[1 + k] if carry is not None else None
        base = c.take(rows) if len(c) else Decimals(np.zeros(count, dtype=np.int64), 0, np.ones(count, dtype=bool))
        if text is not None and before.any():
            extra = Decimals.of_texts([text])
            scale = max(base.scale, extra.scale)
            base, extra = base.rescaled(scale), extra.rescaled(scale)
            m = base.m.copy() if base.m.dtype == extra.m.dtype else base.m.astype(object)
            m[before] = extra.m[0]
            null = base.is_null().copy()
            null[before] = False
            base = Decimals(m, scale, null if null.any() else None)
        elif before.any():
            null = base.is_null().copy()
            null[before] = True
            base = Decimals(base.m, base.scale, null)
        out.append(base)
    return out[0], out[1]


def _next_funding(rows: MinuteRows, slot: np.ndarray, count: int, carry: Carry) -> tuple[np.ndarray, np.ndarray]:
    """The next funding time per slot, and the interval seen between two successive ones (``NONE``: not yet):
    each time the next funding time moves on, by how much."""
    has = rows.next_ts != NONE
    values = rows.next_ms[has]
    at = slot[has]
    before = carry.next_ms[1] if carry.next_ms is not None else NONE
    known = carry.inferred if carry.inferred is not None else NONE
    next_ms = np.full(count, before, dtype=np.int64)
    inferred = np.full(count, known, dtype=np.int64)
    if len(values):
        prev = np.concatenate(([before], values[:-1]))
        moved = (prev != NONE) & (values > prev)
        step = np.where(moved, values - prev, NONE)
        # the interval as of each update: the last move at or before it (the carried one before any)
        last_move = np.maximum.accumulate(np.where(moved, np.arange(len(values)), -1))
        seen = np.where(last_move >= 0, step[np.maximum(last_move, 0)], known)
        upto = np.searchsorted(at, np.arange(count), side="right") - 1  # the last update at or before each slot
        filled = upto >= 0
        next_ms[filled] = values[upto[filled]]
        inferred[filled] = seen[upto[filled]]
        r = int(np.flatnonzero(has)[-1])
        carry.next_ms = [int(rows.next_ts[r]), int(values[-1])]
        known = int(seen[-1])
    carry.inferred = None if known == NONE else known
    return next_ms, inferred


def _liquidations(rows: MinuteRows, first: int, count: int, inst: Instrument | None
                  ) -> tuple[LiquidationColumns, np.ndarray]:
    keep = (rows.liq_minute >= first) & (rows.liq_minute < first + count)
    minute = rows.liq_minute[keep]
    ts, long = rows.liq_ts[keep], rows.liq_long[keep]
    px, sz = rows.liq_px.take(keep), rows.liq_sz.take(keep)
    order = np.lexsort((sz.sort_key(), px.sort_key(), ~long, ts, minute))
    minute, ts, long, px, sz = minute[order], ts[order], long[order], px.take(order), sz.take(order)
    if inst is None:
        base, quote = sz, px.times(sz)
    elif inst.kind == "inverse":
        quote = sz.times(inst.ct_val)
        base = quote.divided(px, INVERSE_BASE_PLACES)
    else:
        base = sz.times(inst.ct_val) if inst.kind != "spot" else sz
        quote = px.times(base)
    starts = np.searchsorted(minute, np.arange(first, first + count + 1, dtype=np.int64)).astype(np.int64)
    return LiquidationColumns(ts, long, px, sz, base, quote), starts
