"""One-minute bars, built once per trade by the host and shared by every indicator.

A :class:`Bar` is a monoid: the aggregate of two sets of trades of the same
minute is the merge of their aggregates (``open`` is the price of the first
trade in ``(ts, trade_id)`` order, ``close`` of the last, the rest are sums,
maxima and minima).  That is why the still-open bar can wait in the state
between runs and absorb trades that arrive in any order within its minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from typing import Any

import numpy as np

from .numbers import ZERO, to_dec
from .timeutil import iso_minute
from .trade_batch import TradeBatch, Unit


class _computed_once:
    """An attribute computed at first use and then kept in the instance (``functools.cached_property``
    without its lock, which Python 3.11 takes at every first use: a third of the cost, once per bar)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


_BUY = {"quote": "buy_quote", "base": "buy_base", "contracts": "buy_contracts"}
_SELL = {"quote": "sell_quote", "base": "sell_base", "contracts": "sell_contracts"}


@dataclass
class Bar:
    """A one-minute bar of one instrument, identified by its open minute.

    Prices are exact decimals; volumes are exact decimals in three units:
    ``*_quote`` (notional, e.g. USD), ``*_base`` (base currency) and
    ``*_contracts`` (the raw ``sz``).  An ``empty`` bar is a filled minute with
    no trades: all prices equal the previous close and all volumes are 0.
    ``taint`` lists data-quality reasons (``"gap"``, ``"late"``) in the order
    they were first seen.
    """

    inst_id: str
    minute: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    trade_count: int = 0
    buy_quote: Decimal = ZERO
    sell_quote: Decimal = ZERO
    buy_base: Decimal = ZERO
    sell_base: Decimal = ZERO
    buy_contracts: Decimal = ZERO
    sell_contracts: Decimal = ZERO
    empty: bool = False
    taint: list[str] = field(default_factory=list)
    # (ts, trade_id) of the trades that set open and close, for merging (the id as text where ids are text)
    first_key: tuple[int, Any] = (0, 0)
    last_key: tuple[int, Any] = (0, 0)
    # the integers its decimals were made from, (open, high, low, close, buy/sell quote, base, contracts, and the
    # scales of price, quote, base and contracts), while it holds one chunk's part alone: a run of bars is put in
    # columns from them (:mod:`indicator_core.bar_run`) without taking each Decimal apart again
    parts: Any = field(default=None, compare=False, repr=False)

    @_computed_once
    def timestamp_utc(self) -> str:
        """The open minute as ``2026-11-23T14:05:00Z`` (computed once per bar, however many indicators ask)."""
        return iso_minute(self.minute)

    def buy_volume(self, unit: Unit) -> Decimal:
        return getattr(self, _BUY[unit])

    def sell_volume(self, unit: Unit) -> Decimal:
        return getattr(self, _SELL[unit])

    def total_volume(self, unit: Unit) -> Decimal:
        return self.buy_volume(unit) + self.sell_volume(unit)

    @property
    def quote_volume(self) -> Decimal:
        return self.buy_quote + self.sell_quote

    @property
    def base_volume(self) -> Decimal:
        return self.buy_base + self.sell_base

    def settle(self) -> None:
        """Make each decimal not yet made from :attr:`parts` (before the parts change or go)."""
        for name in self._DECIMALS:
            getattr(self, name)

    def add_taint(self, reason: str) -> None:
        if reason not in self.taint:
            self.taint.append(reason)

    # --- building ------------------------------------------------------------------
    @classmethod
    def empty_at(cls, inst_id: str, minute: int, price: Decimal) -> "Bar":
        return cls(inst_id, minute, price, price, price, price, empty=True)

    @classmethod
    def from_trades(cls, minute: int, trades: TradeBatch) -> "Bar":
        """The aggregate of a non-empty set of trades that all belong to ``minute``."""
        ts, px = trades.ts, trades.px
        ids = _order_ids(trades)
        if len(ts) == 1:
            i_first = i_last = 0
        else:
            cand = np.flatnonzero(ts == ts.min()).tolist()
            i_first = min(cand, key=ids.__getitem__)
            cand = np.flatnonzero(ts == ts.max()).tolist()
            i_last = max(cand, key=ids.__getitem__)
        ps = trades.px_scale
        buy = trades.is_buy
        sell = ~buy
        qs, bs, ss = trades.quote_scale, trades.base_scale, trades.sz_scale
        return cls(
            inst_id=trades.inst.inst_id,
            minute=minute,
            open=to_dec(int(px[i_first]), ps),
            high=to_dec(int(px.max()), ps),
            low=to_dec(int(px.min()), ps),
            close=to_dec(int(px[i_last]), ps),
            trade_count=len(ts),
            buy_quote=to_dec(int(trades.quote[buy].sum()), qs),
            sell_quote=to_dec(int(trades.quote[sell].sum()), qs),
            buy_base=to_dec(int(trades.base[buy].sum()), bs),
            sell_base=to_dec(int(trades.base[sell].sum()), bs),
            buy_contracts=to_dec(int(trades.sz[buy].sum()), ss),
            sell_contracts=to_dec(int(trades.sz[sell].sum()), ss),
            first_key=(int(ts[i_first]), ids[i_first]),
            last_key=(int(ts[i_last]), ids[i_last]),
        )

    @classmethod
    def from_segments(cls, trades: TradeBatch, starts: np.ndarray, minutes: list[int]) -> list["Bar"]:
        """One bar per segment ``trades[starts[k]:starts[k+1]]``, each all of ``minutes[k]``.

        The whole batch is aggregated with a few numpy calls instead of a
        dozen per minute; the result equals :meth:`from_trades` per segment.
        """
        n = len(trades)
        ends = np.append(starts[1:], n)
        seg = np.repeat(np.arange(len(starts)), ends - starts)
        order = np.lexsort((trades.trade_id, trades.ts, seg))  # by segment, then (ts, trade_id)
        first = order[starts]
        last = order[ends - 1]
        px, buy = trades.px, trades.is_buy
        high = np.maximum.reduceat(px, starts)
        low = np.minimum.reduceat(px, starts)

        def sums(col: np.ndarray) -> tuple[list[int], list[int]]:
            zero = np.zeros(1, dtype=col.dtype)[0]
            b = np.add.reduceat(np.where(buy, col, zero), starts)
            t = np.add.reduceat(col, starts)
            return b.tolist(), (t - b).tolist()

        bq, sq = sums(trades.quote)
        bb, sb = sums(trades.base)
        bc, sc = sums(trades.sz)
        counts = (ends - starts).tolist()
        return cls.from_parts(trades, minutes, first.tolist(), last.tolist(), high.tolist(), low.tolist(), counts,
                              (bq, sq, bb, sb, bc, sc))

    @staticmethod
    def parts_rows(trades: TradeBatch, first: list[int], last: list[int], high: list[int], low: list[int],
                   volumes: tuple[list[int], ...]) -> list[tuple[int, ...]]:
        """Each minute's :attr:`parts` (see :meth:`from_parts`; ``first`` and ``last`` as ties in time resolve)."""
        ps, qs, bs, ss = trades.px_scale, trades.quote_scale, trades.base_scale, trades.sz_scale
        opens, closes = trades.px[first].tolist(), trades.px[last].tolist()
        return list(zip(opens, high, low, closes, *volumes, repeat(ps), repeat(qs), repeat(bs), repeat(ss)))

    @classmethod
    def from_parts(cls, trades: TradeBatch, minutes: list[int], first: list[int], last: list[int], high: list[int],
                   low: list[int], counts: list[int], volumes: tuple[list[int], ...]) -> list["Bar"]:
        """Bars from per-minute aggregates of ``trades``: the rows that open and close each minute, its high and
        low in ``px`` units, its trade count, and its buy and sell sums of quote, base and contracts."""
        ts = trades.ts
        if trades.keys is not None:  # text ids: ties in time go by the text (the rows found ordered digests)
            first, last = _text_ties(trades, counts, first, last)
            keys = [[(t, str(trades.keys[r])) for t, r in zip(ts[rows].tolist(), rows)] for rows in (first, last)]
        else:
            ids = trades.trade_id
            keys = [list(zip(ts[rows].tolist(), ids[rows].tolist())) for rows in (first, last)]
        parts = cls.parts_rows(trades, first, last, high, low, volumes)
        inst_id = trades.inst.inst_id
        # the decimals are made from `parts` when first read (_FromParts): most bars reach the indicators only in
        # runs of columns (BarRun takes the parts as they are), and ten Decimals a minute were a tenth of the
        # pass's main thread
        return [_of_parts(cls, inst_id, m, n, k1, k2, p) for m, n, k1, k2, p in zip(minutes, counts, *keys, parts)]

    def merge(self, other: "Bar") -> None:
        """Absorb ``other``, a bar of the same minute (in place)."""
        assert other.minute == self.minute
        if other.empty:
            return
        if self.parts is not None:
            self.settle()  # its decimals made while it still has the parts they come from
        self.parts = None  # two parts now: its decimals are what counts
        if self.empty:
            self.__dict__.update(other.__dict__, taint=self.taint)
            for reason in other.taint:
                self.add_taint(reason)
            return
        if _before(other.first_key, self.first_key):
            self.first_key, self.open = other.first_key, other.open
        if _before(self.last_key, other.last_key):
            self.last_key, self.close = other.last_key, other.close
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.trade_count += other.trade_count
        self.buy_quote += other.buy_quote
        self.sell_quote += other.sell_quote
        self.buy_base += other.buy_base
        self.sell_base += other.sell_base
        self.buy_contracts += other.buy_contracts
        self.sell_contracts += other.sell_contracts
        for reason in other.taint:
            self.add_taint(reason)

    # --- state -----------------------------------------------------------------------
    _DECIMALS = (
        "open", "high", "low", "close", "buy_quote", "sell_quote", "buy_base", "sell_base",
        "buy_contracts", "sell_contracts",
    )

    def to_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: str(getattr(self, k)) for k in self._DECIMALS}
        out.update(
            inst_id=self.inst_id, minute=self.minute, trade_count=self.trade_count, empty=self.empty,
            taint=list(self.taint), first_key=list(self.first_key), last_key=list(self.last_key),
        )
        return out

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> "Bar":
        kw: dict[str, Any] = {k: Decimal(data[k]) for k in cls._DECIMALS}
        return cls(
            inst_id=data["inst_id"], minute=int(data["minute"]), trade_count=int(data["trade_count"]),
            empty=bool(data["empty"]), taint=list(data["taint"]),
            first_key=tuple(data["first_key"]), last_key=tuple(data["last_key"]), **kw,
        )


class Rows:
    """Closed minutes of one chunk already as rows of a :class:`~indicator_core.bar_run.BarRun`: each traded
    minute's integer parts (as :attr:`Bar.parts`) and trade count, and the filled minutes between them at the
    close before.  The trade stream hands these over for the minutes inside a chunk when every consumer takes
    runs, so that no :class:`Bar` is made for them (:meth:`items` makes them if asked)."""

    __slots__ = ("inst_id", "minutes", "parts", "counts", "filled")

    def __init__(self, inst_id: str, minutes: list[int], parts: list[tuple[int, ...]], counts: list[int],
                 filled: list[bool]) -> None:
        self.inst_id, self.minutes, self.parts, self.counts, self.filled = inst_id, minutes, parts, counts, filled

    def __len__(self) -> int:
        return len(self.minutes)

    def items(self) -> list[Any]:
        """The bars (decimals made from their parts when read; no trade keys: they are closed) and stretches of
        filled minutes these rows stand for."""
        out: list[Any] = []
        for minute, p, count, filled in zip(self.minutes, self.parts, self.counts, self.filled):
            if not filled:
                out.append(_of_parts(Bar, self.inst_id, minute, count, (0, 0), (0, 0), p))
                continue
            last = out[-1] if out else None
            if type(last) is tuple and last[0] + last[1] == minute:
                out[-1] = (last[0], last[1] + 1, last[2])
            else:
                out.append((minute, 1, to_dec(p[3], p[10])))
        return out


def filled_parts(price: int, scale: int) -> tuple[int, ...]:
    """:attr:`Bar.parts` of a filled minute at the price ``price`` × 10^-``scale``: no volume."""
    return (price, price, price, price, 0, 0, 0, 0, 0, 0, scale, 0, 0, 0)


def _of_parts(cls: type[Bar], inst_id: str, minute: int, count: int, first_key: tuple[int, Any],
              last_key: tuple[int, Any], parts: tuple[int, ...]) -> Bar:
    """A traded bar holding ``parts``, its decimals made from them when first read (:class:`_FromParts`)."""
    bar = object.__new__(cls)
    bar.__dict__ = {"inst_id": inst_id, "minute": minute, "trade_count": count, "empty": False, "taint": [],
                    "first_key": first_key, "last_key": last_key, "parts": parts}
    return bar


class _FromParts:
    """A decimal field of a bar that :meth:`Bar.from_parts` made: the exact decimal of its integer and scale in
    :attr:`Bar.parts`, made when first read and then kept in the bar (as :class:`_computed_once` does).  Set on
    the class after ``@dataclass`` has read the fields' defaults, so a bar made by ``__init__`` (which sets every
    field in the instance) never reaches it."""

    def __init__(self, name: str, value: int, scale: int) -> None:
        self.name, self.value, self.scale = name, value, scale

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return self
        parts = obj.__dict__.get("parts")
        if parts is None:
            raise AttributeError(f"Bar.{self.name}: neither set nor made from parts")
        value = obj.__dict__[self.name] = to_dec(parts[self.value], parts[self.scale])
        return value


for _k, _name in enumerate(Bar._DECIMALS):  # parts: open, high, low, close, the six volumes, then four scales
    setattr(Bar, _name, _FromParts(_name, _k, 10 if _k < 4 else 11 + (_k - 4) // 2))
del _k, _name


def _order_ids(trades: TradeBatch) -> list[Any]:
    """What orders trades of one time: the id, as text where ids are text (SPEC section 2: ``(ts, trade_id)``)."""
    if trades.keys is not None:
        return [str(k) for k in trades.keys.tolist()]
    return trades.trade_id.tolist()


def _text_ties(trades: TradeBatch, counts: list[int], first: list[int], last: list[int]) -> tuple[list[int], list[int]]:
    """``first``/``last`` (a row per minute segment, found by ``(ts, digest)``) with ties in time settled by the
    ids' text: among a segment's trades of its first time the smallest id opens it, of its last the largest
    closes it.  Only the segments with such a tie are looked at."""
    ts, keys = trades.ts, trades.keys
    counts_a = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts_a) - counts_a
    first, last = list(first), list(last)
    for rows, pick in ((first, min), (last, max)):
        at = np.repeat(ts[np.asarray(rows, dtype=np.int64)], counts_a)
        tied = np.flatnonzero(np.add.reduceat((ts == at).astype(np.int64), starts) > 1) if len(ts) else []
        for k in np.asarray(tied).tolist():
            a = int(starts[k])
            cand = (np.flatnonzero(ts[a:a + counts[k]] == ts[rows[k]]) + a).tolist()
            rows[k] = pick(cand, key=lambda r: str(keys[r]))
    return first, last


def _before(a: tuple[int, Any], b: tuple[int, Any]) -> bool:
    """``a < b`` for (ts, id) keys; a key kept from before ids were compared as text (a digest) against a text
    one goes by the time alone."""
    if type(a[1]) is not type(b[1]):
        return a[0] < b[0]
    return a < b
