"""The confluence detector (SPEC section 12): ``signals.jsonl``.

It reads records, not trades: ``volume_1m`` of the volume analyzer, the wick
events of ``wicks_{timeframe}`` and, when the instrument has order books,
``buckets_1m``.  In each minute it tests every active wick level against the
minute's high (upper levels, resistance) or low (lower levels, support) with
a tolerance, and scores five layers of evidence:

1. ``wick``: the level is tested (always true in a record);
2. ``volume``: the minute's volume tier is one of ``tiers``;
3. ``absorption``: the volume analyzer's absorption flag;
4. ``wall``: a bucket of the defending side of the book, at least
   ``wall_min`` notional, sits on the level (its range widened by
   ``wall_tolerance_pct`` percent of the level on each side);
5. ``imbalance``: the book leans the signal's way by at least ``imbalance_min``.

Two optional layers read ``derivs_1m`` (SPEC section 17), only when named in
``layers``: ``liquidations`` (the minute's liquidations of the positions the
level is pushed by, shorts at an upper level and longs at a lower one, reach
``liq_min`` quote notional) and ``oi`` (open interest not falling while the
level is tested: ``oi_delta >= 0``).

A layer is ``null`` when its input has nothing valid for the minute.  A
record is written per tested level scoring at least ``min_score``.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from indicator_core import (
    EXACT, TIMEFRAMES, Emit, Indicator, Input, InstrumentKey, Params, Signal, Timeframe, hookimpl, minute_of_iso,
)

Tier = Literal["T1", "T2", "T3", "T4"]
HUNDRED = Decimal(100)
SESSION_MINUTES = 1440  # sessions are daily (their anchor as for CVD)


class ConfluenceParams(Params):
    timeframe: Optional[Timeframe] = None  # the levels of wicks_{timeframe}; unset: the wicks indicator's ("1h")
    wick_tolerance_pct: Decimal = Field(default=Decimal("0.05"), ge=0, lt=100)
    tiers: list[Tier] = Field(default_factory=lambda: ["T4"])
    wall_min: Decimal = Field(default=Decimal("2000000"), ge=0)
    wall_tolerance_pct: Decimal = Field(default=Decimal("0.02"), ge=0)
    imbalance_min: Decimal = Field(default=Decimal("0.7"), ge=-1, le=1)
    min_score: int = Field(default=3, ge=1, le=7)
    # the optional derivatives layers (SPEC 17), off unless named: ["liquidations", "oi"]
    layers: list[Literal["liquidations", "oi"]] = Field(default_factory=list)
    # the levels tested: the untouched wicks, and (SPEC 18) the naked POCs of the footprint
    levels: list[Literal["wicks", "naked_pocs"]] = Field(default_factory=lambda: ["wicks"], min_length=1)
    liq_min: Decimal = Field(default=Decimal("500000"), ge=0)


def signal_id(record: dict[str, Any]) -> str:
    """The signal id of SPEC section 12, ``{inst_id}|{timestamp_utc}|{level}``: unique per record."""
    return f"{record['inst_id']}|{record['timestamp_utc']}|{record['level']}"


def has_books(vault: Path, key: InstrumentKey, cfg: Any) -> bool:
    """Whether the instrument has order-book files (then ``buckets`` will write records for it)."""
    root = getattr(getattr(cfg, "books", None), "root", "raw/books")
    folder = vault / root / key.exchange / key.market / key.inst_id
    return folder.is_dir() and any(p.suffix == ".jsonl" for p in folder.iterdir())


def poc_minute(event: dict[str, Any]) -> int:
    """A naked POC counts from the next session's start (its session's end); a touch in its trade's minute."""
    if event["event"] == "poc_touched":
        return minute_of_iso(event["touched_utc"][:16] + ":00Z")
    return minute_of_iso(event["session_start"]) + SESSION_MINUTES


def has_derivs(vault: Path, key: InstrumentKey, cfg: Any) -> bool:
    """Whether the instrument has derivatives files (then ``derivs`` will write records for it)."""
    root = getattr(getattr(cfg, "derivs", None), "root", "raw/derivs")
    folder = vault / root / key.exchange / key.market / key.inst_id
    return folder.is_dir() and any(p.suffix == ".jsonl" for p in folder.iterdir())


def _mul(a: Decimal, b: Decimal) -> Decimal:
    return EXACT.multiply(a, b)


class Confluence(Indicator):
    name = "confluence"
    version = "1"
    Params = ConfluenceParams
    consumes = "records"  # volume_1m, wicks and buckets as their producers committed them (SPEC section 12)
    # its signals: delivered by notifiers as stream "confluence", id {inst_id}|{timestamp_utc}|{level}
    signals = (Signal("signals", "timestamp_utc", ("timestamp_utc", "level"), direction_field="direction"),)

    def __init__(self, instrument, params: ConfluenceParams) -> None:
        params = self.resolve_params(params, {})
        super().__init__(instrument, params)
        self.p = params
        # active (created, untouched) levels: (side, level text, candle open) -> level value
        self.levels: dict[tuple[str, str, str], Decimal] = {}
        # naked POCs (SPEC 18), when `levels` names them: (side, level text, session start) -> level value
        self.pocs: dict[tuple[str, str, str], Decimal] = {}
        self.last_close: Decimal | None = None  # the close of the last minute read (a new POC's side)
        self.tiers = set(params.tiers)
        self.up_factor = HUNDRED - params.wick_tolerance_pct  # high × 100 >= L × (100 − tol%)
        self.down_factor = HUNDRED + params.wick_tolerance_pct  # low × 100 <= L × (100 + tol%)

    def outputs(self) -> list[str]:
        return ["signals"]

    @classmethod
    def resolve_params(cls, params: ConfluenceParams, others: dict[str, Params]) -> ConfluenceParams:
        if params.timeframe is not None:
            return params
        return params.model_copy(update={"timeframe": getattr(others.get("wicks"), "timeframe", "1h")})

    @classmethod
    def inputs(cls, params: ConfluenceParams) -> list[Input]:
        params = cls.resolve_params(params, {})
        tf = TIMEFRAMES[params.timeframe]

        def wick_minute(event: dict[str, Any]) -> int:
            # a level counts from its candle's close; a touch belongs to the minute of its trade
            if event["event"] == "touch":
                return minute_of_iso(event["touched_utc"])
            return minute_of_iso(event["timestamp_utc"]) + tf

        inputs = [Input("volume", "volume_1m", key="volume")]
        if "wicks" in params.levels:
            inputs.append(Input("wicks", f"wicks_{params.timeframe}", key="wicks", minute=wick_minute,
                                one_per_minute=False))
        inputs.append(Input("buckets", "buckets_1m", key="buckets", required=False, present=has_books))
        if "naked_pocs" in params.levels:
            inputs.append(Input("footprint", "naked_pocs", key="pocs", minute=poc_minute, one_per_minute=False))
        if params.layers:  # only then: the records of a configuration without them stay as they were
            inputs.append(Input("derivs", "derivs_1m", key="derivs", required=False, present=has_derivs))
        return inputs

    def on_records(self, minute: int, records: dict[str, list[dict[str, Any]]], emit: Emit) -> None:
        with localcontext(EXACT):  # every comparison exact; an operation that would round raises
            self._minute(records, emit)

    def _minute(self, records: dict[str, list[dict[str, Any]]], emit: Emit) -> None:
        wicks = records.get("wicks", [])
        for ev in wicks:  # levels whose candle closed at this minute's open are active in it
            if ev["event"] == "wick":
                self.levels[(ev["side"], ev["level"], ev["timestamp_utc"])] = Decimal(ev["level"])
        pocs = records.get("pocs", [])
        for ev in pocs:  # naked from this minute's open: resistance above the last close, support below
            if ev["event"] == "naked_poc":
                level = Decimal(ev["level"])
                side = "upper" if self.last_close is not None and level > self.last_close else "lower"
                self.pocs[(side, ev["level"], ev["session_start"])] = level
        volume = records.get("volume", [])
        if volume and not volume[-1].get("empty"):
            books = records.get("buckets", [])
            derivs = records.get("derivs", [])
            for record in self._signals(volume[-1], books[-1] if books else None, derivs[-1] if derivs else None):
                emit("signals", record)
        for ev in wicks:  # a level touched in this minute was still active in it; not after
            if ev["event"] == "touch":
                self.levels.pop((ev["side"], ev["level"], ev["timestamp_utc"]), None)
        for ev in pocs:
            if ev["event"] == "poc_touched":
                for side in ("upper", "lower"):
                    self.pocs.pop((side, ev["level"], ev["session_start"]), None)
        if volume:
            self.last_close = Decimal(volume[-1]["close"])

    def _signals(self, bar: dict[str, Any], book: dict[str, Any] | None,
                 derivs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        high100, low100 = _mul(Decimal(bar["high"]), HUNDRED), _mul(Decimal(bar["low"]), HUNDRED)
        tested = []
        for kind, levels in ((self.p.timeframe, self.levels), ("poc", self.pocs)):
            for (side, text, opened), level in levels.items():
                if kind == "poc" and any(t[0] == level for t in tested):
                    continue  # a wick at the very price stands for it (one record, one signal id per level)
                if side == "upper" and high100 >= _mul(level, self.up_factor):
                    tested.append((level, side, text, opened, kind))
                elif side == "lower" and low100 <= _mul(level, self.down_factor):
                    tested.append((level, side, text, opened, kind))
        if not tested:
            return []
        tested.sort(key=lambda t: (t[0], t[1]))  # level ascending ("lower" before "upper" at one price)
        tier = bar.get("volume_tier")
        book_ok = book is not None and book.get("valid") is True and book.get("step") is not None
        imbalance = Decimal(book["imbalance"]) if book_ok and book.get("imbalance") is not None else None
        out = []
        for level, side, text, opened, kind in tested:
            wall = self._wall(book, side, level) if book_ok else None
            layers = {
                "wick": True,
                "volume": None if tier is None else tier in self.tiers,
                "absorption": None if tier is None else bar.get("absorption") is True,
                "wall": None if not book_ok else wall is not None,
                "imbalance": None if imbalance is None else
                (imbalance if side == "lower" else -imbalance) >= self.p.imbalance_min,
            }
            if "liquidations" in self.p.layers:
                pushed_by = derivs and derivs["liq_short_quote" if side == "upper" else "liq_long_quote"]
                layers["liquidations"] = None if not pushed_by else Decimal(pushed_by) >= self.p.liq_min
            if "oi" in self.p.layers:
                delta = derivs.get("oi_delta") if derivs else None
                layers["oi"] = None if delta is None else Decimal(delta) >= 0
            score = sum(v is True for v in layers.values())
            if score < self.p.min_score:
                continue
            out.append({
                "timestamp_utc": bar["timestamp_utc"],
                "inst_id": bar.get("inst_id", self.instrument.inst_id),
                "direction": "short" if side == "upper" else "long",
                "level": text,
                "level_side": side,
                "level_tf": kind,  # the wicks' timeframe, or "poc" for a naked POC (SPEC 18)
                "level_utc": opened,
                "close": bar["close"],
                "score": score,
                "of": sum(v is not None for v in layers.values()),
                "layers": layers,
                "volume_tier": tier,
                "wall": wall,
                "imbalance": book["imbalance"] if imbalance is not None else None,
                "conviction": "max" if score == len(layers) else "high" if score == len(layers) - 1 else "normal",
            })
        return out

    def _wall(self, book: dict[str, Any], side: str, level: Decimal) -> dict[str, str] | None:
        """The defending bucket with notional >= wall_min whose widened range holds the level; the largest."""
        step = Decimal(book["step"])
        widen = level * self.p.wall_tolerance_pct / HUNDRED  # exact: a division by 100
        best: tuple[Decimal, Decimal, Decimal, list[str]] | None = None
        for price_text, notional_text in book.get("asks" if side == "upper" else "bids") or []:
            notional = Decimal(notional_text)
            if notional < self.p.wall_min:
                continue
            price = Decimal(price_text)
            if side == "upper":  # an ask bucket a covers (a − step, a]
                inside = price - step - widen < level <= price + widen
            else:  # a bid bucket b covers [b, b + step)
                inside = price - widen <= level < price + step + widen
            if not inside:
                continue
            rank = (notional, -abs(price - level), -price)  # largest; then nearest the level; then lower
            if best is None or rank > best[:3]:
                best = (*rank, [price_text, notional_text])
        if best is None:
            return None
        return {"price": best[3][0], "notional": best[3][1]}

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"levels": [list(k) for k in self.levels]}
        if "naked_pocs" in self.p.levels:
            state["pocs"] = [list(k) for k in self.pocs]
            state["last_close"] = None if self.last_close is None else str(self.last_close)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.levels = {(s, t, o): Decimal(t) for s, t, o in state["levels"]}
        self.pocs = {(s, t, o): Decimal(t) for s, t, o in state.get("pocs", [])}
        self.last_close = Decimal(state["last_close"]) if state.get("last_close") else None


@hookimpl
def register_indicators(register) -> None:
    register(Confluence)
