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

import numpy as np

from indicator_core import (
    PRICE_PLACES, Bar, BarRun, Decimals, Emit, Indicator, JsonField, Params, SessionAnchor, decimal_at, div_round,
    fmt, hookimpl, iso_minute, iso_minutes, json_lines, mantissa_at, parse_anchor, per_distinct, session_start,
    split_decimal,
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
        self._bars: deque[tuple[Decimal, Decimal]] | None = deque()  # (quote, base) of the last `longest` bars
        self._held: _Held | None = None  # the same minutes as on_bars left them, in columns (see bars)
        self.sums = {n: [Decimal(0), Decimal(0)] for n in params.windows}
        self._empty_run = 0  # the last minutes in self.bars that were empty ones (_ZERO), in a row
        self._session_text = _Text()
        self._window_texts = [(f"vwap_{n}m", _Text()) for n in params.windows]  # in the order of self.sums

    def outputs(self) -> list[str]:
        return ["vwap_1m"]

    @property
    def bars(self) -> deque[tuple[Decimal, Decimal]]:
        """(quote, base) of the last ``longest`` minutes (``_ZERO`` itself for an empty one's): made from the
        columns a run of minutes left (:class:`_Held`) when first asked for, by the minute-by-minute path or
        the state; a run reads the columns and never makes them."""
        if self._bars is None:
            assert self._held is not None
            self._bars = self._held.decimals()
        return self._bars

    @bars.setter
    def bars(self, value: deque[tuple[Decimal, Decimal]]) -> None:
        self._bars, self._held = value, None

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
        bars = self.bars  # (made from the columns, which it leaves behind: this minute changes it)
        self._held = None
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
            bars.append((quote, base))
            size = len(bars)
            for n, s in self.sums.items():
                if traded:
                    s[0] += quote
                    s[1] += base
                if size > n:  # the bar that just left this window
                    q_out, b_out = bars[size - 1 - n]
                    if q_out is not _ZERO:  # not an empty minute's
                        s[0] -= q_out
                        s[1] -= b_out
            if size > self.longest:
                bars.popleft()
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

    def on_bars(self, bars: BarRun, emit: Emit) -> None:
        # _minute for a run of minutes, from columns; the state ends as _minute leaves it, exponents included
        n = len(bars)
        traded = ~bars.filled
        quote = bars.buy_volume("quote").plus(bars.sell_volume("quote"))
        base = bars.buy_volume("base").plus(bars.sell_volume("base"))
        kept = self._held if self._held is not None else _Held.of(self.bars)
        sq = max([quote.scale, split_decimal(self.sess_quote)[1], kept.top_q,
                  *(split_decimal(q)[1] for q, _ in self.sums.values())])
        sb = max([base.scale, split_decimal(self.sess_base)[1], kept.top_b,
                  *(split_decimal(b)[1] for _, b in self.sums.values())])
        quote, base = quote.rescaled(sq), base.rescaled(sb)
        kept_q, kept_b = kept.q_at(sq), kept.b_at(sb)
        # the minutes the windows hold: the kept ones, then this run's (a stretch of empty minutes longer than the
        # longest window is held only up to that length: it changes no sum)
        longest, empty_run, held = self.longest, self._empty_run, []
        for i, t in enumerate(traded.tolist()):
            if t:
                held.append(i)
                empty_run = 0
            elif empty_run < longest:
                held.append(i)
                empty_run += 1
        self._empty_run = empty_run
        rows = np.array(held, dtype=np.int64)
        pos = len(kept) + np.searchsorted(rows, np.arange(n), side="right")  # minutes held after each row
        prefix = {}
        for name, col, scale, held_ints in (("q", quote, sq, kept_q), ("b", base, sb, kept_b)):
            entries = Decimals.concat([Decimals.of_ints(held_ints, scale), col.take(rows)]) if len(kept) \
                else col.take(rows)
            prefix[name] = np.concatenate((np.zeros(1, dtype=entries.m.dtype), entries.running().m))
        sessions, restart = bars.sessions(self.anchor, self.session)
        sess_q = quote.running(mantissa_at(self.sess_quote, sq), restart)
        sess_b = base.running(mantissa_at(self.sess_base, sb), restart)
        fields = [JsonField("timestamp_utc", "text", bars.timestamps()), _vwaps("vwap_session", sess_q, sess_b),
                  JsonField("session_start", "text", per_distinct(sessions, iso_minute))]
        for w in self.params.windows:
            back = np.maximum(pos - w, 0)
            fields.append(_vwaps(f"vwap_{w}m", Decimals(prefix["q"][pos] - prefix["q"][back], sq),
                                 Decimals(prefix["b"][pos] - prefix["b"][back], sb)))
        emit("vwap_1m", json_lines(fields, n))

        # the state: each sum with the exponent adding and subtracting minute by minute gives it (the smallest
        # of what went in or out)
        qs, bs = bars.row_scales("quote").tolist(), bars.row_scales("base").tolist()
        total_held = len(kept) + len(held)
        added = [i for i in held if traded[i]]
        last = int(np.flatnonzero(restart)[-1]) if restart.any() else 0
        since = [i for i in added if i >= last]
        again = bool(restart.any())
        self.sess_quote = decimal_at(int(sess_q.m[-1]), sq, max([0 if again else split_decimal(self.sess_quote)[1],
                                                          *(qs[i] for i in since)]))
        self.sess_base = decimal_at(int(sess_b.m[-1]), sb, max([0 if again else split_decimal(self.sess_base)[1],
                                                         *(bs[i] for i in since)]))
        self.session = int(sessions[-1])
        for w, pair in self.sums.items():
            # (a minute leaving a window was added to its sums before: its exponent is in theirs already)
            q_scale = max([split_decimal(pair[0])[1], *(qs[i] for i in added)])
            b_scale = max([split_decimal(pair[1])[1], *(bs[i] for i in added)])
            back = max(total_held - w, 0)
            pair[0] = decimal_at(int(prefix["q"][total_held] - prefix["q"][back]), sq, q_scale)
            pair[1] = decimal_at(int(prefix["b"][total_held] - prefix["b"][back]), sb, b_scale)
        # the tail of all held minutes (kept, then the run's last `longest`), as columns until asked for as decimals
        tail = held[-longest:] if longest else []
        q_m, b_m = quote.m[tail].tolist(), base.m[tail].tolist()
        traded_tail = [bool(traded[i]) for i in tail]
        cut = -longest if longest else len(kept) + len(tail)  # (no window: nothing is held)
        self._bars, self._held = None, _Held(
            (kept_q + q_m)[cut:], (kept_b + b_m)[cut:], sq, sb,
            (kept.q_scales + [qs[i] if t else 0 for i, t in zip(tail, traded_tail)])[cut:],
            (kept.b_scales + [bs[i] if t else 0 for i, t in zip(tail, traded_tail)])[cut:],
            (kept.empty + [not t for t in traded_tail])[cut:])

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


class _Held:
    """The minutes the rolling windows hold, as :meth:`Vwap.on_bars` leaves them: the quote and base volumes as
    mantissas at one scale each (``sq``, ``sb``), each minute's own exponent, and which were empty minutes
    (``_ZERO``).  The next run reads them as they are; the decimals are made only when asked for."""

    __slots__ = ("q", "b", "sq", "sb", "q_scales", "b_scales", "empty")

    def __init__(self, q: list[int], b: list[int], sq: int, sb: int, q_scales: list[int], b_scales: list[int],
                 empty: list[bool]) -> None:
        self.q, self.b, self.sq, self.sb = q, b, sq, sb
        self.q_scales, self.b_scales, self.empty = q_scales, b_scales, empty

    @classmethod
    def of(cls, bars: deque[tuple[Decimal, Decimal]]) -> "_Held":
        """The columns of decimals held minute by minute."""
        q_parts = [split_decimal(q) for q, _ in bars]
        b_parts = [split_decimal(b) for _, b in bars]
        sq, sb = max((s for _, s in q_parts), default=0), max((s for _, s in b_parts), default=0)
        return cls([m * 10 ** (sq - s) for m, s in q_parts], [m * 10 ** (sb - s) for m, s in b_parts], sq, sb,
                   [s for _, s in q_parts], [s for _, s in b_parts], [q is _ZERO for q, _ in bars])

    def __len__(self) -> int:
        return len(self.q)

    @property
    def top_q(self) -> int:
        return max(self.q_scales, default=0)

    @property
    def top_b(self) -> int:
        return max(self.b_scales, default=0)

    def q_at(self, scale: int) -> list[int]:
        """The quote mantissas at ``scale`` (not below any minute's own exponent)."""
        return _at(self.q, self.sq, scale)

    def b_at(self, scale: int) -> list[int]:
        return _at(self.b, self.sb, scale)

    def decimals(self) -> deque[tuple[Decimal, Decimal]]:
        return deque((_ZERO, _ZERO) if e else (decimal_at(q, self.sq, qs), decimal_at(b, self.sb, bs))
                     for q, b, qs, bs, e in zip(self.q, self.b, self.q_scales, self.b_scales, self.empty))


def _at(values: list[int], scale: int, wanted: int) -> list[int]:
    if wanted >= scale:
        k = 10 ** (wanted - scale)
        return values if k == 1 else [v * k for v in values]
    k = 10 ** (scale - wanted)  # exact: no minute shows more than `wanted` decimals
    return [v // k for v in values]


def _vwaps(name: str, quote: Decimals, base: Decimals) -> JsonField:
    """The field ``name``: quote / base rounded half-even to 8 places, null where base is 0."""
    null = np.asarray(base.m == 0, dtype=bool)
    values = np.zeros(len(quote), dtype=np.int64)
    rows = np.flatnonzero(~null)
    if len(rows):
        got = quote.take(rows).divided(base.take(rows), PRICE_PLACES)
        values = values.astype(got.m.dtype)
        values[rows] = got.m
    return Decimals(values, PRICE_PLACES, null).field(name)


@hookimpl
def register_indicators(register) -> None:
    register(Vwap)
