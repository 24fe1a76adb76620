"""A run of closed one-minute bars as columns: what :meth:`Indicator.on_bars` receives.

Writing a record per closed minute from a :class:`~indicator_core.bars.Bar`
costs a dict, a dozen formatted decimals and an ``orjson.dumps``: ~10 µs of
Python a minute and an indicator, the larger part of a pass over a busy
instrument once the trades are parsed in the compiled kernel.  A
:class:`BarRun` holds the same minutes as columns of exact decimals
(:class:`~indicator_core.decimal_columns.Decimals`), so an indicator can
compute them with numpy and write its records with
:func:`~indicator_core.jsonlines.json_lines` in one go.

The rows are consecutive closed minutes in minute order: traded bars and the
filled empty minutes between them (``filled``), as :meth:`Indicator.on_bar`
and :meth:`Indicator.on_empty_bars` would have had them, one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Any, Sequence, Union

import numpy as np

from .bars import Bar, Rows, filled_parts
from .decimal_columns import Decimals, split_decimal
from .numbers import decimal_at
from .timeutil import iso_minute, iso_minutes
from .trade_batch import Unit

EmptyRun = tuple[int, int, Decimal]
"""``(first, count, price)``: filled minutes without a trade, as :meth:`Indicator.on_empty_bars` takes them."""

# the integer parts of a bar: open, high, low, close, buy/sell quote, buy/sell base, buy/sell contracts, then the
# scales of the price, quote, base and contracts columns (Bar.parts)
_UNIT_COLUMNS = {"quote": (4, 5, 11), "base": (6, 7, 12), "contracts": (8, 9, 13)}


def _parts_of(bar: Bar) -> tuple[int, ...]:
    """:attr:`Bar.parts` of a bar that has none (merged, restored, empty): each pair of a unit's buy and sell at
    the larger of their scales, the four prices at the largest of theirs (the exponent a sum of the two, or a
    comparison of the prices, would show)."""
    prices = [split_decimal(v) for v in (bar.open, bar.high, bar.low, bar.close)]
    ps = max(s for _, s in prices)
    out = [m * 10 ** (ps - s) for m, s in prices]
    scales = [ps]
    for buy, sell in ((bar.buy_quote, bar.sell_quote), (bar.buy_base, bar.sell_base),
                      (bar.buy_contracts, bar.sell_contracts)):
        (mb, sb), (ms, ss) = split_decimal(buy), split_decimal(sell)
        s = max(sb, ss)
        out += [mb * 10 ** (s - sb), ms * 10 ** (s - ss)]
        scales.append(s)
    return (*out, *scales)


@dataclass
class BarRun:
    """Consecutive closed one-minute bars of one instrument, as columns (one row a minute, in order).

    Prices are at one scale across the run (``open``, ``high``, ``low``,
    ``close``), as is each unit's volume; ``row_scales(unit)`` gives each
    row's own, the exponent its ``Decimal`` had on the bar.  ``filled``
    marks the empty minutes the host filled in (``empty`` is true there and
    on any bar without a trade); ``taint`` lists each row's reasons.
    """

    inst_id: str
    minute: np.ndarray  # int64
    open: Decimals
    high: Decimals
    low: Decimals
    close: Decimals
    px_scales: np.ndarray  # each row's own scale of its prices
    trade_count: np.ndarray  # int64
    volumes: dict[str, tuple[Decimals, Decimals, np.ndarray]]  # unit -> (buy, sell, each row's scale)
    empty: np.ndarray  # bool
    filled: np.ndarray  # bool
    taint: list[list[str]]
    source: list[Union[Bar, EmptyRun]] | None = None  # what it was made from (:meth:`items` gives it back)

    def __len__(self) -> int:
        return len(self.minute)

    @classmethod
    def of(cls, items: Sequence[Union[Bar, EmptyRun]], inst_id: str) -> "BarRun":
        """The run of ``items``: closed bars and runs of filled empty minutes, in minute order."""
        none: list[str] = []  # shared by the rows without a taint
        if all(type(item) is not tuple and type(item) is not Rows for item in items):  # closed bars only
            bars: Sequence[Bar] = items  # type: ignore[assignment]
            return cls._of(inst_id, items, [bar.parts or _parts_of(bar) for bar in bars],
                           [bar.minute for bar in bars], [bar.trade_count for bar in bars],
                           [bar.empty for bar in bars], [False] * len(bars), [bar.taint or none for bar in bars])
        rows: list[tuple[int, ...]] = []
        minutes: list[int] = []
        counts: list[int] = []
        empty: list[bool] = []
        filled: list[bool] = []
        taint: list[list[str]] = []
        for item in items:
            if type(item) is Rows:
                rows += item.parts
                minutes += item.minutes
                counts += item.counts
                empty += item.filled
                filled += item.filled
                taint += [none] * len(item)
                continue
            if type(item) is tuple:
                first, count, price = item
                rows += [filled_parts(*split_decimal(price))] * count
                minutes += range(first, first + count)
                counts += [0] * count
                empty += [True] * count
                filled += [True] * count
                taint += [none] * count
                continue
            bar: Bar = item  # type: ignore[assignment]
            rows.append(bar.parts or _parts_of(bar))
            minutes.append(bar.minute)
            counts.append(bar.trade_count)
            empty.append(bar.empty)
            filled.append(False)
            taint.append(bar.taint or none)
        return cls._of(inst_id, items, rows, minutes, counts, empty, filled, taint)

    @classmethod
    def _of(cls, inst_id: str, items: Sequence[Union[Bar, EmptyRun]], rows: list[tuple[int, ...]],
            minutes: list[int], counts: list[int], empty: list[bool], filled: list[bool],
            taint: list[list[str]]) -> "BarRun":
        """The run of the rows :meth:`of` gathered (each bar's integer parts, its minute, trade count, flags and
        taint)."""
        try:  # (one flat pass over the ints: twice as quick as numpy taking the tuples one by one)
            grid = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=14 * len(rows)).reshape(len(rows), 14)
        except OverflowError:  # a sum too large for an int64: Python ints, exact all the same
            grid = np.array(rows, dtype=object)
        ps = grid[:, 10].astype(np.int64)
        prices = [Decimals.of_parts(grid[:, k], ps) for k in range(4)]
        volumes = {}
        for unit, (b, s, k) in _UNIT_COLUMNS.items():
            scales = grid[:, k].astype(np.int64)
            volumes[unit] = (Decimals.of_parts(grid[:, b], scales), Decimals.of_parts(grid[:, s], scales), scales)
        return cls(inst_id, np.array(minutes, dtype=np.int64), *prices, ps, np.array(counts, dtype=np.int64), volumes,
                   np.array(empty, dtype=bool), np.array(filled, dtype=bool), taint, list(items))

    # --- read ---------------------------------------------------------------------------------------------------
    def buy_volume(self, unit: Unit) -> Decimals:
        return self.volumes[unit][0]

    def sell_volume(self, unit: Unit) -> Decimals:
        return self.volumes[unit][1]

    def row_scales(self, unit: Unit) -> np.ndarray:
        """Each row's own scale of ``unit``'s volumes (that of the sum of its buy and sell volume on the bar)."""
        return self.volumes[unit][2]

    def sessions(self, anchor: int, before: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's daily session (the minute it began: the latest ``anchor``, minutes after midnight UTC, at
        or before the row), and where a session begins anew against ``before`` (the session of the minute
        before the run; None: none yet)."""
        sessions = self.minute - (self.minute - anchor) % 1440
        restart = np.concatenate(([sessions[0] != (before if before is not None else -1)],
                                  sessions[1:] != sessions[:-1]))
        return sessions, restart

    def timestamps(self) -> list[str]:
        """Each row's open minute as ``2026-11-23T14:05:00Z``."""
        first, last = int(self.minute[0]), int(self.minute[-1])
        if last - first + 1 == len(self.minute):  # consecutive: filled empty minutes, the default
            return list(iso_minutes(first, len(self.minute)))
        return [iso_minute(m) for m in self.minute.tolist()]

    def bar(self, i: int) -> Bar:
        """Row ``i`` as a :class:`Bar` (the values of the bar it was made from)."""
        def dec(col: Decimals, scales: np.ndarray) -> Decimal:
            return decimal_at(int(col.m[i]), col.scale, int(scales[i]))

        ps = self.px_scales
        q, b, c = (self.volumes[u] for u in ("quote", "base", "contracts"))
        return Bar(self.inst_id, int(self.minute[i]), dec(self.open, ps), dec(self.high, ps), dec(self.low, ps),
                   dec(self.close, ps), int(self.trade_count[i]), dec(q[0], q[2]), dec(q[1], q[2]), dec(b[0], b[2]),
                   dec(b[1], b[2]), dec(c[0], c[2]), dec(c[1], c[2]), bool(self.empty[i]), list(self.taint[i]))

    def items(self) -> list[Union[Bar, EmptyRun]]:
        """The run as :meth:`Indicator.on_bar` and :meth:`Indicator.on_empty_bars` take it: a bar for each traded
        row, a ``(first, count, price)`` for each stretch of filled minutes (the very bars and stretches it was
        made from, where it was)."""
        if self.source is not None:
            return [x for item in self.source for x in (item.items() if type(item) is Rows else (item,))]
        out: list[Any] = []
        n = len(self)
        i = 0
        while i < n:
            if not self.filled[i]:
                out.append(self.bar(i))
                i += 1
                continue
            j = i
            while j + 1 < n and self.filled[j + 1] and self.minute[j + 1] == self.minute[j] + 1 \
                    and self.close.m[j + 1] == self.close.m[i]:
                j += 1
            out.append((int(self.minute[i]), j - i + 1, self.bar(i).close))
            i = j + 1
        return out

