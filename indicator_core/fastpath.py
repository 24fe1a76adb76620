"""A clean chunk summed up in the parse thread, by the compiled kernel.

Most chunks are *clean*: trade ids strictly increase with no gap between
records, and minutes never go back.  For such a chunk every decision of
:class:`~indicator_core.streams.trade_stream.TradeStream` is already known from the chunk
alone, except how its first trade follows the stream's state, which the stream
checks when the chunk's turn comes.  So the work that does not depend on that
state (prices and sizes in common scales, base and quote quantities, each
minute's open, high, low, close and volume sums) is done right after parsing,
by ``_native_trades.summarize`` without the GIL, in the thread that parsed the
chunk (prefetch.py): the helper, while the main thread runs the indicators on
earlier chunks.

The kernel gives exactly what the numpy path gives, or nothing: a chunk that
is not clean, an inverse instrument, or values whose products or sums could
leave int64 (where the numpy path switches to Python ints) are left to the
numpy path.  tests/test_fastpath.py checks both paths against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import native
from .instruments import Instrument
from .numbers import parse_decimal
from .sources.parsed import ParsedChunk
from .trade_batch import TradeBatch

_KERNEL = native.load("trades")

# the rows of ``ChunkSummary.segments`` (the kernel's S_* order)
MINUTE, START, FIRST, LAST, HIGH, LOW, BUY_QUOTE, QUOTE, BUY_BASE, BASE, BUY_SZ, SZ = range(12)


@dataclass
class ChunkSummary:
    """A clean chunk's trades as the indicators get them, and per minute its aggregates (one column per minute)."""

    batch: TradeBatch
    segments: np.ndarray  # int64, 12 x minutes, rows as named above
    # opaque ids (Bybit's digests): the chunk's ids sorted, when no id occurs twice in it (else None), so the
    # stream checks the ids it keeps from earlier minutes against them with one searchsorted
    sorted_ids: np.ndarray | None = None


class Summarizer:
    """``summarize(chunk)`` for one instrument, in whichever thread parsed the chunk (it reads nothing that changes)."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.spot = inst.kind == "spot"
        self.usable = _KERNEL is not None and inst.kind in ("spot", "linear")
        self.ct_m, self.ct_s = parse_decimal(format(inst.ct_val, "f")) if self.usable else (0, 0)

    def __call__(self, p: ParsedChunk) -> ParsedChunk:
        if self.usable and len(p) and p.px_m.dtype != object and p.sz_m.dtype != object:
            p.summary = self.summarize(p)
        return p

    def summarize(self, p: ParsedChunk) -> ChunkSummary | None:
        n = len(p)
        # the times and prices on their own (the times copied while the parse left them in the cache), not rows of
        # larger blocks: an indicator that keeps them a while (wicks, until the bars of their minutes are in)
        # keeps only them alive
        ts = p.ts.copy()
        px = np.empty(n, dtype=np.int64)
        sz, base, quote, first_id = np.empty((4, n), dtype=np.int64)
        segments = np.empty((12, n), dtype=np.int64)
        opaque = p.keys is not None
        done = _KERNEL.summarize(ts, p.trade_id, p.count, p.is_buy, p.px_m, p.px_s, p.sz_m, p.sz_s,
                                 self.ct_m, self.spot, px, sz, base, quote, first_id, segments, opaque)
        if done is None:
            return None
        sorted_ids = None
        if opaque:
            sorted_ids = np.sort(p.trade_id)
            if n > 1 and not np.all(sorted_ids[1:] != sorted_ids[:-1]):
                return None  # an id twice in the chunk: the stream judges the repeat trade by trade
        px_scale, sz_scale, minutes = done
        if self.spot:
            base_scale, quote_scale = sz_scale, px_scale + sz_scale
        else:
            base_scale = sz_scale + self.ct_s
            quote_scale = px_scale + base_scale
        batch = TradeBatch(self.inst, ts, p.trade_id, first_id, p.is_buy, px, px_scale, sz, sz_scale,
                           base, base_scale, quote, quote_scale, p.keys)
        return ChunkSummary(batch, segments[:, :minutes], sorted_ids)
