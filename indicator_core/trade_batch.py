"""Trades as exact fixed-point columns.

A :class:`TradeBatch` holds many trades of one instrument as numpy arrays.
Every decimal column is an integer array with one decimal scale for the whole
batch (``px`` holds ``px × 10^px_scale``), so sums are integer sums and stay
exact.  The arrays are ``int64`` when every value and every sum of the batch
is proven to fit, and Python-int ``object`` arrays otherwise, so overflow can
never happen silently.

Indicators receive :class:`TradeBatch` slices that hold the trades of one
minute in arrival order (see :meth:`indicator_core.Indicator.on_trades`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from decimal import Decimal
from typing import Literal

import numpy as np

from .instruments import Instrument
from .numbers import floor_scaled, parse_decimal, to_dec

Unit = Literal["quote", "base", "contracts"]

# Values whose products and sums stay below this bound fit in int64 with room.
_SAFE = 2**62

_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


def _max_abs(arr: np.ndarray) -> int:
    """The largest absolute value (two reductions: no temporary array of absolute values)."""
    return max(int(arr.max()), -int(arr.min())) if len(arr) else 0


def _widen(arr: np.ndarray) -> np.ndarray:
    return arr.astype(object) if arr.dtype != object else arr


def normalize(mantissa: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, int]:
    """Bring per-value ``(mantissa, scale)`` pairs to one common scale, exactly."""
    if len(mantissa) == 0:
        return mantissa.astype(np.int64), 0
    top = int(scales.max())
    shift = top - scales
    if int(shift.max()) == 0:
        return mantissa, top
    if top <= 18 and mantissa.dtype != object and _max_abs(mantissa) * 10 ** int(shift.max()) < _SAFE:
        return mantissa * _POW10[shift], top
    out = np.array([int(m) * 10 ** int(s) for m, s in zip(mantissa, shift)], dtype=object)
    return out, top


def _mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """Exact elementwise product, widened to Python ints if int64 could overflow."""
    if a.dtype == object or (isinstance(b, np.ndarray) and b.dtype == object):
        return _widen(a) * (b if not isinstance(b, np.ndarray) else _widen(b))
    bmax = _max_abs(b) if isinstance(b, np.ndarray) else abs(int(b))
    if _max_abs(a) * max(bmax, 1) < _SAFE:
        return a * b
    return _widen(a) * (_widen(b) if isinstance(b, np.ndarray) else int(b))


def _sum_safe(arr: np.ndarray) -> np.ndarray:
    """Widen a column whose batch sum could overflow int64."""
    if arr.dtype != object and _max_abs(arr) * max(len(arr), 1) >= _SAFE:
        return _widen(arr)
    return arr


def _round_half_even_div(n: int, d: int) -> int:
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q % 2 == 1):
        q += 1
    return q


INVERSE_BASE_SCALE = 12


def derive_quantities(
    inst: Instrument, px: np.ndarray, px_scale: int, sz: np.ndarray, sz_scale: int
) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Base quantity and quote notional of each trade (SPEC section 1).

    Returns ``(base, base_scale, quote, quote_scale)``.
    """
    ct_m, ct_s = parse_decimal(format(inst.ct_val, "f"))
    if inst.kind == "spot":
        base, base_scale = sz, sz_scale
        quote, quote_scale = _mul(px, sz), px_scale + sz_scale
    elif inst.kind == "linear":
        base, base_scale = _mul(sz, ct_m), sz_scale + ct_s
        quote, quote_scale = _mul(px, base), px_scale + base_scale
    else:  # inverse: notional is a number of USD; base = sz·ctVal/px, rounded per trade
        quote, quote_scale = _mul(sz, ct_m), sz_scale + ct_s
        # base·10^12 = quote·10^(12 - quote_scale) / (px·10^-px_scale)
        k = INVERSE_BASE_SCALE - quote_scale + px_scale
        if k >= 0:
            num = [int(q) * 10**k for q in quote]
            den = [int(p) for p in px]
        else:
            num = [int(q) for q in quote]
            den = [int(p) * 10**-k for p in px]
        vals = [_round_half_even_div(n, d) for n, d in zip(num, den)]
        base = np.array(vals, dtype=np.int64) if (not vals or max(vals) < _SAFE) else np.array(vals, dtype=object)
        base_scale = INVERSE_BASE_SCALE
    return _sum_safe(base), base_scale, _sum_safe(quote), quote_scale


@dataclass
class TradeBatch:
    """Trades of one instrument as columns; see the module docstring for the scales.

    ``first_id`` is the first exchange id a record covers: OKX's aggregated
    ``trades`` channel merges ``count`` fills into one record named by the last
    fill's id, so ``first_id = trade_id - count + 1`` (equal to ``trade_id``
    for plain trades).
    """

    inst: Instrument
    ts: np.ndarray
    trade_id: np.ndarray
    first_id: np.ndarray
    is_buy: np.ndarray
    px: np.ndarray
    px_scale: int
    sz: np.ndarray
    sz_scale: int
    base: np.ndarray
    base_scale: int
    quote: np.ndarray
    quote_scale: int
    # the trade ids as the venue wrote them where they are not integers (Bybit); trade_id then holds their
    # digests, which only identify a trade (no order, no gaps).  None: trade_id is the venue's own id.
    keys: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: slice | np.ndarray) -> "TradeBatch":
        """The trades at ``index`` (a slice keeps numpy views, no copy)."""
        return TradeBatch(
            self.inst, self.ts[index], self.trade_id[index], self.first_id[index], self.is_buy[index],
            self.px[index], self.px_scale, self.sz[index], self.sz_scale,
            self.base[index], self.base_scale, self.quote[index], self.quote_scale,
            self.keys[index] if self.keys is not None else None,
        )

    def id_text(self, i: int) -> str:
        """Trade ``i``'s id as the venue wrote it (for records that name a trade)."""
        return str(self.keys[i]) if self.keys is not None else str(int(self.trade_id[i]))

    # --- helpers for indicators -------------------------------------------------
    def volume(self, unit: Unit) -> tuple[np.ndarray, int]:
        """The per-trade volume column in ``unit`` and its decimal scale."""
        if unit == "quote":
            return self.quote, self.quote_scale
        if unit == "base":
            return self.base, self.base_scale
        if unit == "contracts":
            return self.sz, self.sz_scale
        raise ValueError(f"unknown volume unit {unit!r}")

    def rows_over(self, notional: Decimal) -> np.ndarray:
        """The rows whose quote notional is above ``notional``, compared exactly (whale trades)."""
        return (self.quote > _scaled_floor(notional, self.quote_scale)).nonzero()[0]

    def price(self, i: int) -> Decimal:
        """The exact price of trade ``i``."""
        return to_dec(int(self.px[i]), self.px_scale)


@lru_cache(maxsize=256)
def _scaled_floor(value: Decimal, scale: int) -> int:
    """``floor(value × 10^scale)``: for an integer q, ``q > value·10^scale`` exactly when ``q > floor(...)``."""
    return floor_scaled(value, scale)


def column_sum(values: np.ndarray, scale: int, mask: np.ndarray | None = None) -> Decimal:
    """Exact decimal sum of a fixed-point column (optionally of the ``mask``ed rows)."""
    if mask is not None:
        values = values[mask]
    if len(values) == 0:
        return Decimal(0)
    return to_dec(int(values.sum()), scale)
