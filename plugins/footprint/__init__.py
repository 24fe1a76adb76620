"""Footprint, session profile and naked POCs (SPEC section 18): at which price the volume traded.

Three outputs from the same single pass over the trades:

* ``footprint_1m.jsonl`` — per minute with trades, the buy and sell base volume and trade count of every
  price row that traded (a trade belongs to the row ``floor(px / row) × row``), the minute's POC, delta,
  diagonal ask and bid imbalances, stacked imbalances and unfinished highs and lows;
* ``profile.jsonl`` — per session (anchor as for CVD) when a trade of a later session is read: POC,
  value-area high and low, volume;
* ``naked_pocs.jsonl`` — a session's POC is naked from its close until a later trade prints in its row.

``row`` is configured per instrument or ``"auto"``: the 1-2-5 value nearest to 1 bp of the first trade's
price, kept in the state.  Rows are handled as integers ``k = floor(px / row)``; volumes stay exact
fixed-point integers until they are written.  Off by default (it is the costliest indicator of the
pass): ``[plugins.footprint] enabled = true``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any, Optional

import numpy as np
from pydantic import Field

from indicator_core import (
    EXACT, Emit, Indicator, Params, PriceWidth, SessionAnchor, TradeBatch, fmt, fmt_signed, hookimpl, iso_minute, iso_ms,
    parse_anchor, session_start, step_125, to_dec,
)

_SAFE = 2**62


class FootprintParams(Params):
    row: PriceWidth = "auto"  # "auto" or a price width, e.g. "10"
    rows: dict[str, PriceWidth] = Field(default_factory=dict)  # per instrument, overrides `row`
    ratio: Decimal = Field(default=Decimal(3), gt=0)
    stacked_min: int = Field(default=3, ge=2)
    value_area_pct: Decimal = Field(default=Decimal(70), gt=0, le=100)
    session_anchor: SessionAnchor = "00:00"



def _text(value: int, scale: int) -> str:
    """A non-negative fixed-point integer as exact decimal text (SPEC section 3), without a Decimal."""
    if not scale or not value:
        return str(value * 10**-scale) if scale < 0 else str(value)
    digits = str(value).rjust(scale + 1, "0")
    frac = digits[-scale:].rstrip("0")
    return digits[:-scale] + "." + frac if frac else digits[:-scale]


def poc_of(rows: list[int], volumes: list[Any], close_row: int) -> int:
    """The row with the most volume; a tie goes to the row fewer rows from ``close_row``, then the lower."""
    best = None
    for k, v in zip(rows, volumes):
        key = (v, -abs(k - close_row), -k)
        if best is None or key > best[0]:
            best = (key, k)
    assert best is not None
    return best[1]


def value_area(volumes: list[Any], poc: int, pct: Decimal) -> tuple[int, int]:
    """The value area (SPEC 18) over ``volumes`` of consecutive rows (index 0 the lowest): ``(low, high)``
    indices.  From the POC, the next two rows above and the next two below are compared and the pair with
    the larger volume is added (a tie adds the pair above; a side with no row left, the other's), until
    the area holds at least ``pct`` percent of the volume."""
    total = sum(volumes)
    want = Fraction(pct) * total / 100
    lo = hi = poc
    area = volumes[poc]
    n = len(volumes)
    while area < want:
        above = list(range(hi + 1, min(hi + 3, n)))
        below = list(range(lo - 1, max(lo - 3, -1), -1))
        if not above and not below:
            break
        va = sum(volumes[i] for i in above)
        vb = sum(volumes[i] for i in below)
        if above and (not below or va >= vb):
            hi = above[-1]
            area += va
        else:
            lo = below[-1]
            area += vb
    return lo, hi


class Footprint(Indicator):
    name = "footprint"
    version = "1"
    Params = FootprintParams
    enabled_by_default = False

    def __init__(self, instrument, params: FootprintParams) -> None:
        super().__init__(instrument, params)
        self.p = params
        configured = params.rows.get(instrument.inst_id, params.row)
        self.row: Optional[Decimal] = None if configured == "auto" else Decimal(configured)
        self.anchor = parse_anchor(params.session_anchor)
        self.ratio = Fraction(params.ratio)
        # the open session: its start minute, volume by row (base, exact), the rows of its low and high, the
        # row of its last trade
        self.session: Optional[int] = None
        self.volume: dict[int, int] = {}
        self.close_row: Optional[int] = None
        self.naked: list[tuple[int, str, int]] = []  # (row, level text, session start) untouched, by session
        # minutes read but not closed yet (the open one, between chunks): their parts (rows, buys, sells,
        # counts, base scale), their trades' rows and times (for touches), and, from an earlier run, the first
        # trade of each row ([position in the minute, ts])
        self.pending: dict[int, list[tuple]] = {}
        self.trades_of: dict[int, list[tuple]] = {}
        self.firsts: dict[int, dict[int, list[int]]] = {}
        self.vol_scale = 0  # the scale of the session's volumes (exact integers)
        self._levels: dict[int, str] = {}  # row -> its price as text

    def outputs(self) -> list[str]:
        return ["footprint_1m", "profile", "naked_pocs"]

    # --- rows -----------------------------------------------------------------------------------------------
    def _rows(self, trades: TradeBatch) -> np.ndarray:
        """``floor(px / row)`` of every trade, exactly."""
        row = self.row
        assert row is not None
        places = max(0, -row.as_tuple().exponent)  # type: ignore[operator]
        scale = max(trades.px_scale, places)
        row_int = int(row.scaleb(scale))
        px = trades.px
        shift = scale - trades.px_scale
        if px.dtype != object and int(px.max()) * 10**shift < _SAFE:
            return (px * 10**shift) // row_int
        return np.array([int(p) * 10**shift // row_int for p in px], dtype=object)

    @property
    def _row_text(self) -> str:
        return fmt(self.row) if self.row is not None else ""

    def _level(self, k: int) -> str:
        text = self._levels.get(k)
        if text is None:
            assert self.row is not None
            text = self._levels[k] = fmt(EXACT.multiply(Decimal(k), self.row))
        return text

    # --- the pass -------------------------------------------------------------------------------------------
    # The trades come a chunk at a time (trades_by_minute = False): one pass of numpy sums every (minute, row)
    # of the chunk, and each minute's rows wait for its bar.  A minute's trades may come in several chunks;
    # its parts are merged (exact integers at one scale) and written when the bar closes (on_bar), where the
    # naked POCs its trades printed in are touched too.  Sessions close when the stream enters a later one
    # (on_advance, which comes before the later session's first bar): the close's events come first.
    trades_by_minute = False

    def on_advance(self, minute: int, emit: Emit) -> None:
        if self.session is not None and session_start(minute, self.anchor) > self.session:
            self._close_session(emit)

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        """Minutes without trades have no footprint."""

    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        n = len(trades)
        if not n:
            return
        if self.row is None:
            self.row = step_125(EXACT.divide(trades.price(0), Decimal(10000)))
        k = self._rows(trades)
        minute = trades.ts // 60_000
        cut = np.flatnonzero(minute[1:] != minute[:-1]) + 1  # the chunk's minutes (in order: late ones are out)
        bounds = [0, *cut.tolist(), n]
        base = trades.base
        buy = np.where(trades.is_buy, base, 0)
        m0 = int(minute[0])
        nmin = int(minute[-1]) - m0 + 1
        exact = k.dtype != object and base.dtype != object and int(base.sum()) < 2**53
        lo = int(k.min()) if exact else 0
        span = int(k.max()) - lo + 1 if exact else 0
        in_order = not bool((minute[1:] < minute[:-1]).any())  # one segment per minute
        if exact and in_order and span * nmin <= 8 * n + 65536:
            # every (minute, row) of the chunk at once: counts and sums of its bins (float sums of integers
            # below 2^53 are exact)
            key = (minute - m0) * span + (k - lo)
            size = span * nmin
            counts = np.bincount(key, minlength=size)
            nz = np.flatnonzero(counts)
            buys = np.bincount(key, weights=buy, minlength=size)[nz].astype(np.int64).tolist()
            sells = np.bincount(key, weights=base - buy, minlength=size)[nz].astype(np.int64).tolist()
            cnt = counts[nz].tolist()
            rows = (nz % span + lo).tolist()
            edges = np.searchsorted(nz, (np.arange(nmin + 1) * span)).tolist()
            for a, b in zip(bounds, bounds[1:]):
                m = int(minute[a])
                i, j = edges[m - m0], edges[m - m0 + 1]
                self._part(m, (rows[i:j], buys[i:j], sells[i:j], cnt[i:j], trades.base_scale), k[a:b], trades.ts[a:b])
        else:
            for a, b in zip(bounds, bounds[1:]):
                self._part(int(minute[a]), self._minute_part(k[a:b], base[a:b], buy[a:b], trades.base_scale),
                           k[a:b], trades.ts[a:b])

    @staticmethod
    def _minute_part(k: np.ndarray, base: np.ndarray, buy: np.ndarray, scale: int) -> tuple:
        """The rows of one minute's trades, summed exactly whatever their size (sort and reduce)."""
        order = np.argsort(k, kind="stable")
        ks = k[order]
        n = len(ks)
        edge = np.empty(n, dtype=bool)
        edge[0] = True
        np.not_equal(ks[1:], ks[:-1], out=edge[1:])
        starts = np.flatnonzero(edge)
        return ([int(x) for x in ks[starts]], [int(x) for x in np.add.reduceat(buy[order], starts)],
                [int(x) for x in np.add.reduceat((base - buy)[order], starts)], np.diff(np.append(starts, n)).tolist(),
                scale)

    def _part(self, minute: int, part: tuple, k: np.ndarray, ts: np.ndarray) -> None:
        self.pending.setdefault(minute, []).append(part)
        self.trades_of.setdefault(minute, []).append((k, ts))

    def _minute_rows(self, parts: list[tuple]) -> tuple[list[int], list[int], list[int], list[int], int]:
        """A minute's rows (ascending) with their buy and sell volume and trade counts, at one scale."""
        if len(parts) == 1:
            return parts[0]
        scale = max(p[4] for p in parts)
        acc: dict[int, list[int]] = {}
        for rows, buys, sells, counts, sc in parts:
            up = 10 ** (scale - sc)
            for r, b, s_, c in zip(rows, buys, sells, counts):
                cur = acc.setdefault(r, [0, 0, 0])
                cur[0] += int(b) * up
                cur[1] += int(s_) * up
                cur[2] += c
        rows = sorted(acc)
        return rows, [acc[r][0] for r in rows], [acc[r][1] for r in rows], [acc[r][2] for r in rows], scale

    def on_bar(self, bar: Any, emit: Emit) -> None:
        parts = self.pending.pop(bar.minute, None)
        if bar.empty or not parts:
            return
        rows, buys, sells, counts, scale = self._minute_rows(parts)
        trades_of = self.trades_of.pop(bar.minute, [])
        firsts = self.firsts.pop(bar.minute, {})
        if self.session is None:
            self.session = session_start(bar.minute, self.anchor)
            self.volume, self.vol_scale = {}, 0
        if self.naked:
            self._touches(rows, firsts, trades_of, emit)
        close_row, high_row, low_row = (self._row_of(x) for x in (bar.close, bar.high, bar.low))
        volume = self.volume
        if scale > self.vol_scale:  # the session's volumes at one scale, the larger
            up = 10 ** (scale - self.vol_scale)
            self.volume = volume = {r: v * up for r, v in volume.items()}
            self.vol_scale = scale
        up = 10 ** (self.vol_scale - scale)
        for r, b, s_ in zip(rows, buys, sells):
            volume[r] = volume.get(r, 0) + (b + s_) * up
        self.close_row = close_row
        emit("footprint_1m", self._record(bar.minute, rows, buys, sells, counts, scale, close_row, high_row, low_row))

    def _row_of(self, px: Decimal) -> int:
        assert self.row is not None
        return int(EXACT.divide_int(px, self.row))

    def _record(self, minute: int, rows: list[int], buys: list[int], sells: list[int], counts: list[int],
                scale: int, close_row: int, high_row: int, low_row: int) -> dict[str, Any]:
        num, den = self.ratio.numerator, self.ratio.denominator
        level = self._levels
        for r in rows:
            if r not in level:
                self._level(r)
        asks, bids = [], []  # rows ascending, so these are too
        last = len(rows) - 1
        for i, r in enumerate(rows):
            b, s = buys[i], sells[i]
            # the diagonal neighbours: sold one row below, bought one row above (0 where that row did not trade)
            below = sells[i - 1] if i and rows[i - 1] == r - 1 else 0
            above = buys[i + 1] if i < last and rows[i + 1] == r + 1 else 0
            if b > 0 and b * den >= num * below:
                asks.append(r)
            if s > 0 and s * den >= num * above:
                bids.append(r)
        poc = poc_of(rows, [b + s for b, s in zip(buys, sells)], close_row)
        hi, lo = rows.index(high_row), rows.index(low_row)
        text = _text
        return {
            "timestamp_utc": iso_minute(minute),
            "row": self._row_text,
            "levels": [[level[r], text(b, scale), text(s, scale), c] for r, b, s, c in zip(rows, buys, sells, counts)],
            "poc": level[poc],
            "delta": fmt_signed(to_dec(sum(buys) - sum(sells), scale)),
            "ask_imbalances": [level[r] for r in asks],
            "bid_imbalances": [level[r] for r in bids],
            "stacked": self._stacked(asks, "ask") + self._stacked(bids, "bid"),
            "unfinished_high": buys[hi] > 0 and sells[hi] > 0,
            "unfinished_low": buys[lo] > 0 and sells[lo] > 0,
        }

    def _stacked(self, rows: list[int], side: str) -> list[dict[str, Any]]:
        if len(rows) < self.p.stacked_min:
            return []
        out = []
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i] != rows[i - 1] + 1:
                if i - start >= self.p.stacked_min:
                    out.append({"side": side, "from": self._level(rows[start]), "to": self._level(rows[i - 1]),
                                "rows": i - start})
                start = i
        return out

    def _touches(self, rows: list[int], firsts: dict[int, list[int]], trades_of: list[tuple], emit: Emit) -> None:
        """The naked POCs whose row a trade of this minute printed in: each touched by its first such trade
        (events in the trades' stream order, then by session).  ``firsts``: rows already seen in the minute
        by an earlier run, ``[position, ts]`` of their first trade."""
        traded = set(rows)
        hit = []
        for i, (r, level, session) in enumerate(self.naked):
            if r not in traded:
                continue
            first = firsts.get(r)
            if first is None:
                offset = max((p for p, _ in firsts.values()), default=-1) + 1
                for kk, tt in trades_of:
                    idx = np.flatnonzero(kk == r)
                    if idx.size:
                        first = [offset + int(idx[0]), int(tt[idx[0]])]
                        break
                    offset += len(kk)
            if first is not None:
                hit.append((first[0], session, i, first[1]))
        if not hit:
            return
        for _, session, i, ts in sorted(hit):
            emit("naked_pocs", {"event": "poc_touched", "level": self.naked[i][1], "session_start": iso_minute(session),
                                "touched_utc": iso_ms(ts)})
        gone = {i for _, _, i, _ in hit}
        self.naked = [x for i, x in enumerate(self.naked) if i not in gone]

    def _close_session(self, emit: Emit) -> None:
        assert self.session is not None
        if not self.volume:  # nothing closed in it (cannot happen: a later session starts after its last bar)
            self.session = None
            return
        assert self.close_row is not None
        low, high = min(self.volume), max(self.volume)
        vols = [self.volume.get(r, 0) for r in range(low, high + 1)]
        poc = poc_of(list(range(low, high + 1)), vols, self.close_row)
        va_lo, va_hi = value_area([Fraction(v) for v in vols], poc - low, self.p.value_area_pct)
        level = self._level(poc)
        start = iso_minute(self.session)
        emit("profile", {"session_start": start, "row": fmt(self.row), "poc": level, "vah": self._level(low + va_hi),
                         "val": self._level(low + va_lo), "volume": _text(sum(vols), self.vol_scale)})
        emit("naked_pocs", {"event": "naked_poc", "level": level, "session_start": start})
        self.naked.append((poc, level, self.session))
        self.session, self.volume, self.vol_scale, self.close_row = None, {}, 0, None

    # --- state ----------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "row": None if self.row is None else str(self.row),
            "session": self.session,
            "volume": [[r, str(v)] for r, v in sorted(self.volume.items())],
            "vol_scale": self.vol_scale,
            "close_row": self.close_row,
            "naked": [list(x) for x in self.naked],
            "open": [self._open_state(m) for m in sorted(self.pending)],
        }

    def _open_state(self, minute: int) -> list:
        """A minute read but not closed: its rows summed, and the first trade of each row (for touches)."""
        rows, buys, sells, counts, scale = self._minute_rows(self.pending[minute])
        firsts = dict(self.firsts.get(minute, {}))
        offset = max((p for p, _ in firsts.values()), default=-1) + 1
        for kk, tt in self.trades_of.get(minute, []):
            for r in set(kk.tolist()) - set(firsts):
                i = int(np.flatnonzero(kk == r)[0])
                firsts[r] = [offset + i, int(tt[i])]
            offset += len(kk)
        return [minute, [str(r) for r in rows], [str(b) for b in buys], [str(x) for x in sells], counts, scale,
                [[r, p, t] for r, (p, t) in sorted(firsts.items())]]

    def set_state(self, state: dict[str, Any]) -> None:
        self.row = None if state.get("row") is None else Decimal(state["row"])
        self.session = state.get("session")
        self.volume = {int(r): int(v) for r, v in state.get("volume", [])}
        self.vol_scale = int(state.get("vol_scale", 0))
        self.close_row = state.get("close_row")
        self.naked = [(int(r), str(level), int(s)) for r, level, s in state.get("naked", [])]
        self.pending, self.trades_of, self.firsts = {}, {}, {}
        for minute, rows, buys, sells, counts, scale, firsts in state.get("open", []):
            self.pending[minute] = [([int(r) for r in rows], [int(b) for b in buys], [int(x) for x in sells],
                                     list(counts), int(scale))]
            self.firsts[minute] = {int(r): [int(p), int(t)] for r, p, t in firsts}


@hookimpl
def register_indicators(register) -> None:
    register(Footprint)

