"""The volume analyzer's records of a run of closed minutes, from columns (``VolumeAnalyzer.on_bars``).

Byte for byte what ``on_bar`` and ``on_empty_bars`` write minute by minute
(tests/test_bar_runs.py holds the two together), without a dict and a dozen
formatted decimals a minute: volumes, deltas, moves and flags are computed on
the run's integer columns; only the rolling median stays a loop over the
minutes (each minute's median is that of the totals before it), on plain ints
at one scale.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import orjson

from indicator_core import (
    RATIO_PLACES, BarRun, Decimals, JsonField, JsonLines, decimal_at, json_lines, per_distinct,
    split_decimal,
)

from .numbers import ZERO

if TYPE_CHECKING:
    from .analyzer import VolumeAnalyzer

_TAINTS: dict[tuple[str, ...], bytes] = {}


def _taint_json(*reasons: str) -> bytes:
    got = _TAINTS.get(reasons)
    if got is None:
        got = _TAINTS[reasons] = orjson.dumps(list(reasons))
    return got


def volume_records(a: "VolumeAnalyzer", bars: BarRun) -> JsonLines:
    """The ``volume_1m`` records of ``bars``; ``a``'s window, whale sums and empty count move past them."""
    p = a.params
    n = len(bars)
    buy, sell = bars.buy_volume(p.unit), bars.sell_volume(p.unit)
    total, delta = buy.plus(sell), buy.minus(sell)
    move = bars.close.minus(bars.open)

    # the rolling median: each row against the totals remembered before it, as ints at one scale `w`
    old = list(a.window)
    old_ints, old_scales, w = _window_ints(a, total.scale)
    lift = 10 ** (w - total.scale)
    totals = [int(t) * lift for t in total.m.tolist()]
    window = deque(old_ints)
    ordered = sorted(window)
    filled = bars.filled.tolist()
    size, least = p.median_window, p.median_min_bars
    # total > tier × median, exactly: t·10^(w+1) ... as t · 10^(1+e) > c · m for a tier c·10^-e, m at scale w + 1
    (c4, k4), (c3, k3), (c2, k2) = ((c, 10 ** (1 + e)) for c, e in
                                    (split_decimal(x) for x in (p.tier_t4_above, p.tier_t3_above, p.tier_t2_from)))
    medians = [0] * n  # at scale w + 1: half a sum of two totals is exact there
    med_null = np.zeros(n, dtype=bool)
    ratio_rows: list[int] = []
    tiers: list[str | None] = [None] * n
    remembered: list[int] = []  # rows whose totals went into the window
    empty_run = a._empty_run
    for i, t in enumerate(totals):
        if filled[i]:
            if empty_run >= size:  # a window full of empty minutes' zeros stays so (on_empty_bars)
                continue  # median 0, no ratio, no tier, nothing remembered
            empty_run += 1
        else:
            empty_run = 0
        if len(window) >= least:
            h = len(ordered) >> 1
            m = ordered[h] * 10 if len(ordered) & 1 else (ordered[h - 1] + ordered[h]) * 5
            medians[i] = m
            if m:
                ratio_rows.append(i)
                tiers[i] = ("T4" if t * k4 > c4 * m else "T3" if t * k3 > c3 * m
                            else "T2" if t * k2 >= c2 * m else "T1")
        else:
            med_null[i] = True
        window.append(t)
        insort(ordered, t)
        remembered.append(i)
        if len(window) > size:
            del ordered[bisect_left(ordered, window.popleft())]
    a._empty_run = empty_run
    # the window as the analyzer keeps it: the totals as Decimals with each bar's own exponent, ZERO for empty minutes
    scales = bars.row_scales(p.unit).tolist()
    last = remembered[-size:]
    kept = [ZERO if filled[i] else decimal_at(totals[i], w, scales[i]) for i in last]
    a.window = deque((old + kept)[-size:])
    a.ordered = sorted(a.window)
    a.window_ints = (a.window, w, (old_ints + [totals[i] for i in last])[-size:],
                     (old_scales + [0 if filled[i] else scales[i] for i in last])[-size:])

    median = Decimals.of_ints(medians, w + 1, med_null)
    ratio = np.zeros(n, dtype=np.int64)
    ratio_null = np.ones(n, dtype=bool)
    if ratio_rows:
        rows = np.array(ratio_rows, dtype=np.int64)
        got = Decimals.of_ints(totals, w).take(rows).divided(median.take(rows), RATIO_PLACES)
        ratio = ratio.astype(got.m.dtype)
        ratio[rows] = got.m
        ratio_null[rows] = False

    # price change and the flags
    change = np.zeros(n, dtype=np.int64)
    moved = np.flatnonzero(move.m != 0)
    if len(moved):
        got = move.take(moved).times(Decimal(100)).divided(bars.open.take(moved), RATIO_PLACES)
        change = change.astype(got.m.dtype)
        change[moved] = got.m
    tier_null = np.array([t is None for t in tiers], dtype=bool)
    absorption = np.zeros(n, dtype=bool)
    c, e = split_decimal(p.absorption_max_move)
    for i in np.flatnonzero(np.array([t == "T4" for t in tiers], dtype=bool)).tolist():
        absorption[i] = abs(int(move.m[i])) * 10**e < c * int(bars.open.m[i])
    up, gain = np.asarray(move.m > 0, dtype=bool), np.asarray(delta.m > 0, dtype=bool)
    divergence = np.asarray(move.m != 0, dtype=bool) & np.asarray(delta.m != 0, dtype=bool) & (up != gain)

    # whales: the sums on_trades kept for these minutes, [buy, sell, count, scale] a minute
    whale_count = np.zeros(n, dtype=np.int64)
    whale_buy = whale_sell = Decimals(np.zeros(n, dtype=np.int64), 0)
    if a.whales:
        last = int(bars.minute[-1])
        found = [(i, a.whales.pop(m)) for m, i in _rows_of(bars.minute, [m for m in a.whales if m <= last])]
        found = [(i, wh) for i, wh in found if not filled[i]]  # (a filled minute has none: a whale makes it traded)
        if found:
            rows = np.array([i for i, _ in found], dtype=np.int64)
            scales = np.array([wh[3] for _, wh in found], dtype=np.int64)
            parts = [Decimals.of_parts(Decimals.of_ints([wh[k] for _, wh in found], 0).m, scales) for k in (0, 1)]
            whale_buy, whale_sell = (_spread(d, rows, n) for d in parts)
            whale_count[rows] = [wh[2] for _, wh in found]
    whale_total = whale_buy.plus(whale_sell)

    fields = [
        JsonField("timestamp_utc", "text", bars.timestamps()),
        JsonField("inst_id", "text", [bars.inst_id] * n),
        bars.open.field("open"), bars.high.field("high"), bars.low.field("low"), bars.close.field("close"),
        total.field("total_volume"), buy.field("buy_volume"), sell.field("sell_volume"),
    ]
    if p.base_volumes:
        fields += [bars.buy_volume("base").field("buy_base"), bars.sell_volume("base").field("sell_base")]
    tainted = np.fromiter(map(bool, bars.taint), dtype=bool, count=n)
    # (most runs have no taint at all: one text for every row then)
    taints = per_distinct([tuple(t) for t in bars.taint], _taint_json) if tainted.any() else [_taint_json()] * n
    fields += [
        delta.field("delta", plus=True),
        JsonField("trade_count", "int", bars.trade_count, quoted=False),
        whale_total.field("whale_volume"),
        JsonField("whale_count", "int", whale_count, quoted=False),
        whale_buy.field("whale_buy_volume"),
        whale_sell.field("whale_sell_volume"),
        median.field("volume_median"),
        Decimals(ratio, RATIO_PLACES, ratio_null).field("volume_ratio"),
        JsonField("volume_tier", "text", [t or "" for t in tiers], null=tier_null),
        Decimals(change, RATIO_PLACES).field("price_change_pct", plus=True),
        JsonField("absorption", "bool", absorption),
        JsonField("divergence", "bool", divergence),
        JsonField("empty", "bool", bars.empty),
        JsonField("tainted", "bool", tainted),
        JsonField("taint", "raw", taints),
    ]
    return json_lines(fields, n)


def _window_ints(a: "VolumeAnalyzer", scale: int) -> tuple[list[int], list[int], int]:
    """The analyzer's window as ints at one scale ``w``, each total's own scale, and ``w``: the largest of
    ``scale`` and theirs.  Kept from the run before while the window is the one that run left (a run of
    1,024 minutes otherwise takes its 100 decimals apart again)."""
    kept = a.window_ints
    if kept is not None and kept[0] is a.window:
        _, at, ints, scales = kept
    else:
        parts = [split_decimal(v) for v in a.window]
        scales = [s for _, s in parts]
        at = max(scales, default=0)
        ints = [m * 10 ** (at - s) for m, s in parts]
    w = max([scale, *scales])
    if w > at:
        ints = [v * 10 ** (w - at) for v in ints]
    elif w < at:  # no total shows more decimals than its own scale: exact
        ints = [v // 10 ** (at - w) for v in ints]
    return ints, scales, w


def _rows_of(minutes: np.ndarray, wanted: list[int]) -> list[tuple[int, int]]:
    """``(minute, row)`` of each of ``wanted`` that is a row of ``minutes`` (ascending)."""
    if not wanted:
        return []
    keys = np.array(wanted, dtype=np.int64)
    at = np.minimum(np.searchsorted(minutes, keys), len(minutes) - 1)
    hit = minutes[at] == keys
    return list(zip(keys[hit].tolist(), at[hit].tolist()))


def _spread(values: Decimals, rows: np.ndarray, n: int) -> Decimals:
    """``values`` put at ``rows`` of a column of ``n`` zeros."""
    out = np.zeros(n, dtype=values.m.dtype)
    out[rows] = values.m
    return Decimals(out, values.scale)
