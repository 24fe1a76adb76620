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
from pydantic import Field, field_validator

from indicator_core import (
    EXACT, Emit, Indicator, Params, SessionAnchor, TradeBatch, fmt, fmt_signed, hookimpl, iso_minute, iso_ms,
    parse_anchor, session_start, step_125, to_dec,
)

_SAFE = 2**62


def _row_value(value: str) -> str:
    if value == "auto":
        return value
    try:
        d = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"row must be \"auto\" or a positive decimal price width, got {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"row must be \"auto\" or a positive decimal price width, got {value!r}")
    return value


class FootprintParams(Params):
    row: str = "auto"  # "auto" or a price width, e.g. "10"
    rows: dict[str, str] = Field(default_factory=dict)  # per instrument, overrides `row`
    ratio: Decimal = Field(default=Decimal(3), gt=0)
    stacked_min: int = Field(default=3, ge=2)
    value_area_pct: Decimal = Field(default=Decimal(70), gt=0, le=100)
    session_anchor: SessionAnchor = "00:00"

    @field_validator("row")
    @classmethod
    def _check_row(cls, v: str) -> str:
        return _row_value(v)

    @field_validator("rows")
    @classmethod
    def _check_rows(cls, v: dict[str, str]) -> dict[str, str]:
        for text in v.values():
            _row_value(text)
        return v


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
        # the open minute, as the calls of on_trades gave it: (rows, buys, sells, counts, base scale) each
        self.parts: list[tuple] = []
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

    def _level(self, k: int) -> str:
        text = self._levels.get(k)
        if text is None:
            assert self.row is not None
            text = self._levels[k] = fmt(EXACT.multiply(Decimal(k), self.row))
        return text

    # --- the pass -------------------------------------------------------------------------------------------
    # A minute's trades may come in several calls (a chunk ends inside it); their rows are summed in the open
    # minute (exact integers at one scale) and written when the bar closes (on_bar).  Sessions close when the
    # stream enters a later one (on_advance, or the first trades of a later session), naked POCs are touched
    # by the trades as they are read: the close's events come first.

    def on_advance(self, minute: int, emit: Emit) -> None:
        if self.session is not None and session_start(minute, self.anchor) > self.session:
            self._close_session(emit)

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        """Minutes without trades have no footprint."""

    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        n = len(trades)
        if not n:
            return
        minute = int(trades.ts[0]) // 60_000
        if self.row is None:
            self.row = step_125(EXACT.divide(trades.price(0), Decimal(10000)))
        session = session_start(minute, self.anchor)
        if self.session is not None and session > self.session:
            self._close_session(emit)
        if self.session is None:
            self.session = session
            self.volume, self.vol_scale = {}, 0
        k = self._rows(trades)
        base = trades.base
        buy = np.where(trades.is_buy, base, 0)
        lo = int(k.min()) if k.dtype != object else min(k)
        span = (int(k.max()) if k.dtype != object else max(k)) - lo + 1
        if base.dtype != object and span <= 4 * n + 64 and int(base.sum()) < 2**53:
            # rows as offsets from the lowest: counts and sums by row in three passes; float sums of integers
            # below 2^53 are exact
            off = (k - lo) if k.dtype != object else np.array([int(x) - lo for x in k], dtype=np.int64)
            counts = np.bincount(off, minlength=span)
            nz = np.flatnonzero(counts)
            buys = np.bincount(off, weights=buy, minlength=span)[nz].astype(np.int64)
            sells = np.bincount(off, weights=base - buy, minlength=span)[nz].astype(np.int64)
            part = ((nz + lo).tolist(), buys.tolist(), sells.tolist(), counts[nz].tolist(), trades.base_scale)
        else:
            order = np.argsort(k, kind="stable")
            ks = k[order]
            edge = np.empty(n, dtype=bool)
            edge[0] = True
            np.not_equal(ks[1:], ks[:-1], out=edge[1:])
            starts = np.flatnonzero(edge)
            part = (ks[starts].tolist(), np.add.reduceat(buy[order], starts).tolist(),
                    np.add.reduceat((base - buy)[order], starts).tolist(), np.diff(np.append(starts, n)).tolist(),
                    trades.base_scale)
        if self.naked:
            self._touches(trades, k, part[0], emit)
        self.parts.append(part)

    def _minute_rows(self) -> tuple[list[int], list[int], list[int], list[int], int]:
        """The open minute's rows (ascending) with their buy and sell volume and trade counts, at one scale."""
        if len(self.parts) == 1:
            return self.parts[0]
        scale = max(p[4] for p in self.parts)
        acc: dict[int, list[int]] = {}
        for rows, buys, sells, counts, sc in self.parts:
            up = 10 ** (scale - sc)
            for r, b, s_, c in zip(rows, buys, sells, counts):
                cur = acc.setdefault(r, [0, 0, 0])
                cur[0] += int(b) * up
                cur[1] += int(s_) * up
                cur[2] += c
        rows = sorted(acc)
        return rows, [acc[r][0] for r in rows], [acc[r][1] for r in rows], [acc[r][2] for r in rows], scale

    def on_bar(self, bar: Any, emit: Emit) -> None:
        if bar.empty or not self.parts:
            return
        rows, buys, sells, counts, scale = self._minute_rows()
        self.parts = []
        close_row, high_row, low_row = (self._row_of(x) for x in (bar.close, bar.high, bar.low))
        volume = self.volume
        if scale != self.vol_scale:  # the session's volumes at one scale, the larger
            if scale > self.vol_scale:
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
        q, _ = EXACT.divmod(px, self.row)
        return int(q)

    def _record(self, minute: int, rows: list[int], buys: list[int], sells: list[int], counts: list[int],
                scale: int, close_row: int, high_row: int, low_row: int) -> dict[str, Any]:
        by = dict(zip(rows, zip(buys, sells)))
        ratio = self.ratio
        num, den = ratio.numerator, ratio.denominator
        asks, bids = [], []
        for r, (b, s) in by.items():
            below = by.get(r - 1, (0, 0))[1]
            above = by.get(r + 1, (0, 0))[0]
            if b > 0 and b * den >= num * below:
                asks.append(r)
            if s > 0 and s * den >= num * above:
                bids.append(r)
        poc = poc_of(rows, [b + s for b, s in zip(buys, sells)], close_row)
        hb, hs = by[high_row]
        lb, ls = by[low_row]
        return {
            "timestamp_utc": iso_minute(minute),
            "row": fmt(self.row),
            "levels": [[self._level(r), _text(b, scale), _text(s, scale), c] for r, b, s, c in zip(rows, buys, sells, counts)],
            "poc": self._level(poc),
            "delta": fmt_signed(to_dec(sum(buys) - sum(sells), scale)),
            "ask_imbalances": [self._level(r) for r in sorted(asks)],
            "bid_imbalances": [self._level(r) for r in sorted(bids)],
            "stacked": self._stacked(sorted(asks), "ask") + self._stacked(sorted(bids), "bid"),
            "unfinished_high": hb > 0 and hs > 0,
            "unfinished_low": lb > 0 and ls > 0,
        }

    def _stacked(self, rows: list[int], side: str) -> list[dict[str, Any]]:
        out = []
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i] != rows[i - 1] + 1:
                if i - start >= self.p.stacked_min:
                    out.append({"side": side, "from": self._level(rows[start]), "to": self._level(rows[i - 1]),
                                "rows": i - start})
                start = i
        return out

    def _touches(self, trades: TradeBatch, k: np.ndarray, rows: list[int], emit: Emit) -> None:
        """The naked POCs whose row a trade of this minute printed in: each touched by its first such trade
        (events in trade order, then by session)."""
        traded = set(rows)
        hit = []
        for i, (r, level, session) in enumerate(self.naked):
            if r in traded:
                first = int(np.argmax(k == r))
                hit.append((first, session, i))
        if not hit:
            return
        for first, session, i in sorted(hit):
            r, level, _ = self.naked[i]
            emit("naked_pocs", {"event": "poc_touched", "level": level, "session_start": iso_minute(session),
                                "touched_utc": iso_ms(int(trades.ts[first]))})
        gone = {i for _, _, i in hit}
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
            "open": [[[str(v) for v in x] if isinstance(x, list) else x for x in self._minute_rows()]]
            if self.parts else [],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.row = None if state.get("row") is None else Decimal(state["row"])
        self.session = state.get("session")
        self.volume = {int(r): int(v) for r, v in state.get("volume", [])}
        self.vol_scale = int(state.get("vol_scale", 0))
        self.close_row = state.get("close_row")
        self.naked = [(int(r), str(level), int(s)) for r, level, s in state.get("naked", [])]
        self.parts = [tuple([int(v) for v in x] if isinstance(x, list) else x for x in p)
                      for p in state.get("open", [])]


@hookimpl
def register_indicators(register) -> None:
    register(Footprint)

