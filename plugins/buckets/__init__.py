"""Order-book buckets (SPEC section 11): ``buckets_1m.jsonl``, the book at every minute's close.

A book indicator (``consumes = "books"``): per minute, the best prices, mid
and spread, the notional resting within ``band_pct`` of the mid on each side
grouped into price buckets of width ``step`` (bids at ``floor(px/step)·step``,
asks at ``ceil(px/step)·step``), the depth imbalance and the largest bucket
of each side (the wall).  All sums are exact; spread and imbalance are
rounded half-even to 4 places.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import Field

from indicator_core import (
    EXACT, RATIO_PLACES, Emit, Indicator, Params, PriceWidth, Unit, div_round, fmt, fmt_signed, hookimpl, iso_ms,
    step_125,
)

if TYPE_CHECKING:  # (the book stream's modules load when a vault has books, not with every command)
    from indicator_core import BookMinute

INVERSE_BASE_PLACES = 12  # as a trade's base quantity (SPEC section 1)


class BucketsParams(Params):
    band_pct: Decimal = Field(default=Decimal(1), gt=0, le=100)
    step: PriceWidth = "auto"  # "auto" or a price width, e.g. "10"
    steps: dict[str, PriceWidth] = Field(default_factory=dict)  # per instrument, overrides `step`
    stale_seconds: int = Field(default=90, gt=0)
    unit: Unit = "quote"



def auto_step(mid: Decimal) -> Decimal:
    """The value of the series 1, 2, 5 × 10^k nearest by ratio to 1 bp of ``mid`` (SPEC section 11)."""
    return step_125(EXACT.divide(mid, Decimal(10000)))


def _floor_bucket(px: Decimal, step: Decimal) -> Decimal:
    q, _ = EXACT.divmod(px, step)
    return EXACT.multiply(q, step)


def _ceil_bucket(px: Decimal, step: Decimal) -> Decimal:
    q, r = EXACT.divmod(px, step)
    if r:
        q = EXACT.add(q, 1)
    return EXACT.multiply(q, step)


class Buckets(Indicator):
    name = "buckets"
    version = "1"
    Params = BucketsParams
    consumes = "books"

    def __init__(self, instrument, params: BucketsParams) -> None:
        super().__init__(instrument, params)
        configured = params.steps.get(instrument.inst_id, params.step)
        self.fixed_step = None if configured == "auto" else Decimal(configured)
        self.step: Decimal | None = self.fixed_step  # auto: chosen at the first valid record, then kept
        self.band = params.band_pct
        self.stale_ms = params.stale_seconds * 1000
        kind = instrument.kind
        unit = params.unit
        ct = instrument.ct_val
        # notional of a level of price p and size s, exactly as a trade's (SPEC section 1)
        if unit == "contracts":
            self.notional = lambda p, s: s
        elif unit == "quote":
            self.notional = (lambda p, s: s * ct) if kind == "inverse" else (lambda p, s: p * s * ct)
        elif kind == "inverse":
            self.notional = lambda p, s: div_round(s * ct, p, INVERSE_BASE_PLACES)
        else:
            self.notional = lambda p, s: s * ct

    def outputs(self) -> list[str]:
        return ["buckets_1m"]

    def _side(self, levels: Iterator[tuple[Decimal, Decimal]], mid: Decimal, reach: Decimal, step: Decimal,
              bucket) -> tuple[Decimal, list[list[str]], dict[str, str] | None]:
        """Depth, buckets (best first) and wall of one side's levels within the band."""
        depth = Decimal(0)
        rows: list[list[Any]] = []  # [bucket price, notional]
        notional = self.notional
        bids = bucket is _floor_bucket
        # a valid book is not crossed: bids are below the mid, asks above, so |px - mid| > reach is one comparison
        limit = EXACT.subtract(mid, reach) if bids else EXACT.add(mid, reach)
        row: list[Any] | None = None  # the last bucket: a level within it needs no division
        for px, sz in levels:
            if (px < limit) if bids else (px > limit):
                break  # levels come best first: every later one is farther from the mid
            n = notional(px, sz)
            depth += n
            # bids go down, each bucket [b, b + step); asks go up, each (b - step, b]
            if row is not None and (px >= row[0] if bids else px <= row[0]):
                row[1] += n
                continue
            b = bucket(px, step)
            if row is not None and row[0] == b:
                row[1] += n
            else:
                row = [b, n]
                rows.append(row)
        wall = None
        for b, n in rows:  # strictly larger: a tie keeps the bucket nearer the mid
            if n and (wall is None or n > wall[1]):
                wall = (b, n)
        rows = [r for r in rows if r[1]]
        return depth, [[fmt(b), fmt(n)] for b, n in rows], (
            {"price": fmt(wall[0]), "notional": fmt(wall[1])} if wall is not None else None)

    def on_book(self, m: BookMinute, emit: Emit) -> None:
        taint = list(m.taint)
        bb, ba = m.best_bid(), m.best_ask()
        record: dict[str, Any] = {
            "timestamp_utc": m.timestamp_utc,
            "valid": m.valid,
            "book_ts": iso_ms(m.book_ts) if m.book_ts is not None else None,
            "best_bid": None, "best_ask": None, "mid": None, "spread_bps": None, "step": None,
            "bid_depth": None, "ask_depth": None, "imbalance": None,
            "bids": [], "asks": [], "bid_wall": None, "ask_wall": None,
        }
        if m.valid:
            if m.book_ts is not None and m.end_ms - m.book_ts > self.stale_ms:
                taint.append("stale")
            record["best_bid"] = fmt(bb) if bb is not None else None
            record["best_ask"] = fmt(ba) if ba is not None else None
            if bb is not None and ba is not None:
                mid = EXACT.divide(bb + ba, Decimal(2))
                if self.step is None:
                    self.step = auto_step(mid)
                step = self.step
                reach = EXACT.divide(mid * self.band, Decimal(100))
                bid_depth, bids, bid_wall = self._side(m.bids(), mid, reach, step, _floor_bucket)
                ask_depth, asks, ask_wall = self._side(m.asks(), mid, reach, step, _ceil_bucket)
                total = bid_depth + ask_depth
                record.update({
                    "mid": fmt(mid),
                    "spread_bps": fmt(div_round((ba - bb) * 10000, mid, RATIO_PLACES)),
                    "bid_depth": fmt(bid_depth), "ask_depth": fmt(ask_depth),
                    "imbalance": fmt_signed(div_round(bid_depth - ask_depth, total, RATIO_PLACES)) if total else None,
                    "bids": bids, "asks": asks, "bid_wall": bid_wall, "ask_wall": ask_wall,
                })
        record["step"] = fmt(self.step) if self.step is not None else None
        record["tainted"] = bool(taint)
        record["taint"] = taint
        emit("buckets_1m", record)

    def get_state(self) -> dict[str, Any]:
        return {"step": str(self.step) if self.step is not None else None}

    def set_state(self, state: dict[str, Any]) -> None:
        saved = state.get("step")
        if self.fixed_step is None and saved is not None:
            self.step = Decimal(saved)


@hookimpl
def register_indicators(register) -> None:
    register(Buckets)
