"""VWAP (SPEC section 5): ``vwap_1m.jsonl``.

``vwap_session`` = Σ quote notional / Σ base quantity over the trades since
the session anchor (daily, UTC); ``vwap_{N}m`` the same over the last N
one-minute bars including the current one.  Sums are exact; the division is
rounded half-even to 8 places.  A VWAP over no base quantity is ``null``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator

from indicator_core import (
    PRICE_PLACES, Bar, Emit, Indicator, Params, SessionAnchor, div_round, fmt, hookimpl, iso_minute, iso_minutes,
    parse_anchor, session_start,
)


class VwapParams(Params):
    windows: list[int] = Field(default_factory=lambda: [60, 240])
    session_anchor: SessionAnchor = "00:00"

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[int]) -> list[int]:
        if any(n <= 0 for n in v):
            raise ValueError(f"rolling windows are numbers of one-minute bars, each > 0: {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"window listed twice: {v}")
        return v


_ZERO = Decimal(0)  # the volumes of an empty minute, told apart by identity


def _vwap(quote: Decimal, base: Decimal) -> str | None:
    return fmt(div_round(quote, base, PRICE_PLACES)) if base != 0 else None


class _Text:
    """The text of one VWAP, divided again only when its sums changed (not across empty minutes)."""

    __slots__ = ("quote", "base", "text")

    def __init__(self) -> None:
        self.quote: Decimal | None = None
        self.base: Decimal | None = None
        self.text: str | None = None

    def of(self, quote: Decimal, base: Decimal) -> str | None:
        if quote != self.quote or base != self.base:
            self.quote, self.base, self.text = quote, base, _vwap(quote, base)
        return self.text


class Vwap(Indicator):
    name = "vwap"
    version = "1"
    Params = VwapParams

    def __init__(self, instrument, params: VwapParams) -> None:
        super().__init__(instrument, params)
        self.anchor = parse_anchor(params.session_anchor)
        self.session: int | None = None
        self._session_key: int | None = None
        self._session_utc = ""
        self.sess_quote = Decimal(0)
        self.sess_base = Decimal(0)
        self.longest = max(params.windows, default=0)
        self.bars: deque[tuple[Decimal, Decimal]] = deque()  # (quote, base) of the last `longest` bars
        self.sums = {n: [Decimal(0), Decimal(0)] for n in params.windows}
        self._empty_run = 0  # the last minutes in self.bars that were empty ones (_ZERO), in a row
        self._session_text = _Text()
        self._window_texts = [(f"vwap_{n}m", _Text()) for n in params.windows]  # in the order of self.sums

    def outputs(self) -> list[str]:
        return ["vwap_1m"]

    def on_bar(self, bar: Bar, emit: Emit) -> None:
        self._minute(bar.minute, bar.quote_volume, bar.base_volume, bar.timestamp_utc, emit)

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        # an empty minute adds nothing: its sums are left as they are (adding 0 would only make new objects), and
        # it leaves a window without a subtraction; tests/test_empty_runs.py holds this to on_bar
        for minute, timestamp_utc in zip(range(first, first + count), iso_minutes(first, count)):
            self._minute(minute, _ZERO, _ZERO, timestamp_utc, emit)

    def _minute(self, minute: int, quote: Decimal, base: Decimal, timestamp_utc: str, emit: Emit) -> None:
        """One minute's volumes into the sums, and its record (``_ZERO`` itself: an empty minute's)."""
        traded = quote is not _ZERO
        session = session_start(minute, self.anchor)
        if session != self.session:
            self.session = session
            self.sess_quote = Decimal(0)
            self.sess_base = Decimal(0)
        if session != self._session_key:  # its text, once per session
            self._session_key, self._session_utc = session, iso_minute(session)
        if traded:
            self.sess_quote += quote
            self.sess_base += base
        if traded or self._empty_run < self.longest:
            self.bars.append((quote, base))
            size = len(self.bars)
            for n, s in self.sums.items():
                if traded:
                    s[0] += quote
                    s[1] += base
                if size > n:  # the bar that just left this window
                    q_out, b_out = self.bars[size - 1 - n]
                    if q_out is not _ZERO:  # not an empty minute's
                        s[0] -= q_out
                        s[1] -= b_out
            if size > self.longest:
                self.bars.popleft()
            self._empty_run = 0 if traded else self._empty_run + 1
        # else every minute the windows hold is an empty one's: another one in, the oldest out, nothing moves
        record: dict[str, Any] = {
            "timestamp_utc": timestamp_utc,
            "vwap_session": self._session_text.of(self.sess_quote, self.sess_base),
            "session_start": self._session_utc,
        }
        for (key, text), (q, b) in zip(self._window_texts, self.sums.values()):
            record[key] = text.of(q, b)
        emit("vwap_1m", record)

    def get_state(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "sess_quote": str(self.sess_quote),
            "sess_base": str(self.sess_base),
            "bars": [[str(q), str(b)] for q, b in self.bars],
            "sums": {str(n): [str(q), str(b)] for n, (q, b) in self.sums.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._empty_run = 0
        self.session = state["session"]
        self.sess_quote = Decimal(state["sess_quote"])
        self.sess_base = Decimal(state["sess_base"])
        self.bars = deque((Decimal(q), Decimal(b)) for q, b in state["bars"])
        saved = {int(n): [Decimal(q), Decimal(b)] for n, (q, b) in state["sums"].items()}
        self.sums = {n: saved[n] for n in self.params.windows}  # the configured order, not the file's


@hookimpl
def register_indicators(register) -> None:
    register(Vwap)
