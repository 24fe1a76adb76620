"""A chunk's derivatives items summed up in columns: what taking them one by one would do, at once.

The compiled reader hands the stream a chunk's items as rows
(:class:`~indicator_core.sources.derivs_lines.OkxColumns`: runs of open
interest, funding items, liquidations).  When none of them is late, the order
of items matters only within a minute and within one kind of item, so each
minute's values can be found in bulk: the last open interest (the last run's
last push), the last funding rate, funding time and interval, the
liquidations without repeats, and the counters.  The minutes the stream
already holds items of, and those of lines the kernel handed back, are taken
one by one.  :func:`sum_up` says ``None`` whenever the chunk is not that
simple (a late item, items of one minute going back in time, other
instruments' liquidations to hand on or to take from another folder): the
stream then takes the whole chunk item by item, the reference path, which the
tests hold this one to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..decimal_columns import Decimals
from ..sources.derivs_lines import (
    COL_A, COL_B, COL_KIND, COL_LINE, COL_T0, COL_T1, R_FUNDING, R_LIQ, R_OI, Item, OkxColumns,
)
from ..timeutil import MINUTE_MS
from .derivs_batch import NONE, MinuteRows

if TYPE_CHECKING:
    from .derivs_stream import DerivsStream


class Summed:
    """The rows of a chunk's minutes, and what to add to the counters."""

    __slots__ = ("rows", "raw", "counts", "max_ts", "first_minute", "pending", "pending_items")

    def __init__(self, rows: MinuteRows, raw: dict[str, np.ndarray], counts: dict[str, int], max_ts: int,
                 first_minute: int, pending: np.ndarray, pending_items: list[Item]) -> None:
        self.rows = rows
        self.raw = raw  # per row of `rows`: the (mantissa, scale) pairs as read (for texts as the venue wrote them)
        self.counts = counts
        self.max_ts = max_ts
        self.first_minute = first_minute  # the minute of the chunk's first item
        self.pending = pending  # the kernel rows of minutes the stream already holds: to take one by one
        self.pending_items = pending_items  # with the items of the lines read the reference way


def sum_up(stream: "DerivsStream", cols: OkxColumns, other: list[Item]) -> Summed | None:
    """The chunk's items of this instrument as rows of minutes, or ``None`` (take them one by one).

    ``other`` are the items of the lines the kernel handed back (read the reference way): their minutes
    are taken one by one, with the kernel's items of the same minutes, in line order."""
    rows = cols.rows
    kind_all = rows[:, COL_KIND]
    foreign = (kind_all == R_LIQ) & (rows[:, COL_A] == 0)
    has_foreign = bool(foreign.any())
    other_foreign = any(i[0] == "fliq" for i in other)
    if stream.barrier or stream.routers or (stream.keep_foreign and (has_foreign or other_foreign)):
        # a history's day barrier; liquidations handed on by another folder, added to minutes as they close;
        # other instruments' liquidations to hand on
        return None
    if other_foreign:  # not kept: the stream only counts them
        other = [i for i in other if i[0] != "fliq"]
    mine = rows[~foreign] if has_foreign else rows
    if not len(mine) and not other:
        return Summed(MinuteRows.empty(), {}, {}, -1, -1, mine, [])
    t0, t1 = mine[:, COL_T0], mine[:, COL_T1]
    minute = t0 // MINUTE_MS
    # --- no item late: the closing each item saw, in line order, never passes its minute ------------------------
    if other:
        o_ts = np.array([i[2] for i in other], dtype=np.int64)
        order = np.argsort(np.concatenate((mine[:, COL_LINE] + cols.first_line,
                                           np.array([i[-1] for i in other], dtype=np.int64))), kind="stable")
        in_order = np.concatenate((t1, o_ts))[order]
        first_minute = np.concatenate((minute, o_ts // MINUTE_MS))[order]
        held_minutes = [*stream.minutes, *np.unique(o_ts // MINUTE_MS).tolist()]
    else:
        in_order, first_minute, held_minutes = t1, minute, list(stream.minutes)
    seen = np.maximum.accumulate(in_order)
    if stream.max_ts is not None:
        seen = np.maximum(seen, stream.max_ts)
    closed = (seen - stream.late_ms) // MINUTE_MS
    if stream.closed is not None:
        closed = np.maximum(closed, stream.closed)
    next_emit = stream.next_emit if stream.next_emit is not None else int(first_minute[0])
    item_minute = (np.concatenate((t0, o_ts))[order] if other else t0) // MINUTE_MS
    if (item_minute < np.maximum(closed, next_emit)).any():
        return None
    if not len(mine):
        return Summed(MinuteRows.empty(), {}, {}, -1, int(first_minute[0]), mine, other)
    kind = mine[:, COL_KIND]
    held = np.isin(minute, np.array(held_minutes, dtype=np.int64)) if held_minutes else None
    if held is not None and not held.any():
        held = None

    def of(which: int) -> np.ndarray:
        """The rows of one kind in minutes not held, ordered by minute (line order within one)."""
        at = np.flatnonzero(kind == which if held is None else (kind == which) & ~held)
        m = minute[at]
        if len(m) > 1 and (m[1:] < m[:-1]).any():
            at = at[np.argsort(m, kind="stable")]
        return at

    oi_at, fu_at, lq_at = of(R_OI), of(R_FUNDING), of(R_LIQ)
    oi_min, fu_min = minute[oi_at], minute[fu_at]
    oi_t0, oi_t1 = t0[oi_at], t1[oi_at]
    # --- within a minute, runs and funding items never go back in time (else: one by one) ----------------------
    same = oi_min[1:] == oi_min[:-1]
    if (same & (oi_t0[1:] < oi_t1[:-1])).any():
        return None
    fu_t = t0[fu_at]
    if ((fu_min[1:] == fu_min[:-1]) & (fu_t[1:] < fu_t[:-1])).any():
        return None
    counts = dict.fromkeys(("items", "oi", "funding", "liquidations", "duplicates"), 0)
    # --- open interest: each minute's last run's last push; repeats within runs and across them ----------------
    oi_vals = mine[oi_at, 7:15]
    n_oi = int(mine[oi_at, COL_A].sum())
    across = same & (oi_t0[1:] == oi_t1[:-1]) & (oi_vals[1:, :4] == oi_vals[:-1, 4:]).all(axis=1)
    counts["oi"] = n_oi
    counts["duplicates"] += int(mine[oi_at, COL_B].sum()) + int(across.sum())
    # --- funding: the last rate (repeats: the same rate at the same time as the one before), time, interval ----
    fu_vals = mine[fu_at, 7:12]  # rate mantissa, scale, fundingTime, -, nextFundingTime
    has_rate = fu_vals[:, 1] >= 0
    rated_min, rated_t, rated = fu_min[has_rate], fu_t[has_rate], fu_vals[has_rate]
    counts["funding"] = len(fu_at)
    counts["duplicates"] += int(((rated_min[1:] == rated_min[:-1]) & (rated_t[1:] == rated_t[:-1])
                                 & (rated[1:, :2] == rated[:-1, :2]).all(axis=1)).sum())
    ft, nft = fu_vals[:, 2], fu_vals[:, 4]
    has_next = ft != 0
    interval = np.where((ft != 0) & (nft != 0) & (nft > ft), nft - ft, 0)
    # --- liquidations: without repeats (the same time, side, price and size) ------------------------------------
    lq_key = mine[lq_at][:, [COL_T0, COL_B, 7, 8, 9, 10]]
    keep = first_of_each(lq_key)
    counts["liquidations"] = len(lq_at)
    counts["duplicates"] += len(lq_at) - len(keep)
    lq_key, lq_min = lq_key[keep], minute[lq_at[keep]]
    counts["items"] = n_oi + len(fu_at) + len(lq_at)
    # --- one row per minute ------------------------------------------------------------------------------------
    minutes = np.unique(np.concatenate((oi_min, fu_min, lq_min)))
    n = len(minutes)

    def last_of(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The index of each group's last member (sorted by group), and its minute's row."""
        if not len(group):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        ends = np.flatnonzero(np.append(group[1:] != group[:-1], True))
        return ends, np.searchsorted(minutes, group[ends])

    oi_ts = np.full(n, NONE, dtype=np.int64)
    oi_parts = np.zeros((n, 4), dtype=np.int64)
    ends, at = last_of(oi_min)
    oi_ts[at] = oi_t1[ends]
    oi_parts[at] = oi_vals[ends, 4:]
    no_oi = oi_ts == NONE
    funding_ts = np.full(n, NONE, dtype=np.int64)
    rate_parts = np.zeros((n, 2), dtype=np.int64)
    ends, at = last_of(rated_min)
    funding_ts[at] = rated_t[ends]
    rate_parts[at] = rated[ends, :2]
    next_ts, next_ms = np.full(n, NONE, dtype=np.int64), np.full(n, NONE, dtype=np.int64)
    ends, at = last_of(fu_min[has_next])
    next_ts[at] = fu_t[has_next][ends]
    next_ms[at] = ft[has_next][ends]
    interval_ts, interval_ms = np.full(n, NONE, dtype=np.int64), np.full(n, NONE, dtype=np.int64)
    has_interval = interval != 0
    ends, at = last_of(fu_min[has_interval])
    interval_ts[at] = fu_t[has_interval][ends]
    interval_ms[at] = interval[has_interval][ends]
    null_oi = no_oi if no_oi.any() else None
    out = MinuteRows(
        minutes, oi_ts,
        Decimals.of_parts(oi_parts[:, 0], oi_parts[:, 1], null_oi),
        Decimals.of_parts(oi_parts[:, 2], oi_parts[:, 3], null_oi),
        funding_ts, Decimals.of_parts(rate_parts[:, 0], rate_parts[:, 1], funding_ts == NONE),
        next_ts, next_ms, interval_ts, interval_ms,
        lq_min, lq_key[:, 0], lq_key[:, 1] == 1, Decimals.of_parts(lq_key[:, 2], lq_key[:, 3]),
        Decimals.of_parts(lq_key[:, 4], lq_key[:, 5]),
    )
    raw = {"oi": oi_parts, "rate": rate_parts, "liq": lq_key[:, 2:6]}
    pending = mine[held] if held is not None else mine[:0]
    return Summed(out, raw, counts, int(t1.max()), int(first_minute[0]), pending, other)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def first_of_each(key: np.ndarray) -> np.ndarray:
    """The indices of the rows of ``key`` (int64, 2-d) not equal to an earlier row, ascending."""
    if len(key) < 2:
        return np.arange(len(key))
    with np.errstate(over="ignore"):
        h = key[:, 0].view(np.uint64).copy()
        for c in range(1, key.shape[1]):
            h = (h * _MIX) ^ key[:, c].view(np.uint64)
    order = np.argsort(h, kind="stable")  # equal rows: the earliest first
    hs, ks = h[order], key[order]
    same_hash = hs[1:] == hs[:-1]
    same_row = (ks[1:] == ks[:-1]).all(axis=1)
    if (same_hash & ~same_row).any():  # two different rows of one hash: compared field by field
        order = np.lexsort(key.T[::-1])
        ks = key[order]
        same_row = (ks[1:] == ks[:-1]).all(axis=1)
        same_hash = same_row
    first = np.ones(len(key), dtype=bool)
    first[1:] = ~same_row
    return np.sort(order[first])
