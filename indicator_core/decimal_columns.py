"""Exact decimals in columns: integer mantissas at one scale, and the arithmetic a batch of records needs.

A column of decimals is held as ``m × 10^-scale``: int64 mantissas where
every value fits (the common case: prices, sizes and open interest of a few
digits), Python ints in an object array where one does not, so a sum or a
product is never rounded and never wraps.  Whether a result fits is decided
before it is computed (from the magnitudes, with a margin), never detected
after a wrap.  A ``null`` mask marks rows without a value.

This is what lets a derivatives batch (a day's minutes, its liquidations)
be computed and written without a ``Decimal`` per value; every operation here
is held to ``Decimal`` by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

import numpy as np

from .jsonlines import Field
from .numbers import to_dec

_LIMIT = float(2**62)  # magnitudes below it fit int64 with room for one more addition


def _magnitude(m: np.ndarray) -> float:
    if not len(m):
        return 0.0
    if m.dtype == object:
        return float(max(abs(int(v)) for v in m.tolist()))
    return float(np.abs(m.astype(np.float64)).max())


def _ints(values: list[int]) -> np.ndarray:
    """Python ints as int64 where all fit, else as an object array."""
    if not values or max(values) < _LIMIT and min(values) > -_LIMIT:
        return np.array(values, dtype=np.int64)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def split_decimal(value: Decimal) -> tuple[int, int]:
    """``(mantissa, scale)`` of a decimal at the scale its exponent shows: ``Decimal("1.50")`` is ``(150, 2)``,
    ``Decimal("1E+2")`` is ``(100, 0)``."""
    sign, digits, exp = value.as_tuple()
    m = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    return (m, -int(exp)) if int(exp) < 0 else (m * 10 ** int(exp), 0)


def mantissa_at(value: Decimal, scale: int) -> int:
    """``value × 10^scale`` as an int; ``value`` must not show more than ``scale`` decimals."""
    m, s = split_decimal(value)
    if s > scale:
        raise ValueError(f"{value} has more than {scale} decimals")
    return m * 10 ** (scale - s)


def split_text(text: str) -> tuple[int, int]:
    """A plain decimal's text as ``(mantissa, scale)``: ``"-12.50"`` is ``(-1250, 2)``."""
    whole, dot, frac = text.partition(".")
    return int(whole + frac) if frac else int(whole), len(frac)


def join_text(m: int, scale: int) -> str:
    """The plain text of ``(mantissa, scale)`` (:func:`split_text` back): ``(-1250, 2)`` is ``"-12.50"``."""
    if scale <= 0:
        return str(m)
    digits = str(abs(m)).rjust(scale + 1, "0")
    return ("-" if m < 0 else "") + digits[:-scale] + "." + digits[-scale:]


@dataclass
class Decimals:
    """A column of exact decimals: ``m × 10^-scale`` (``m`` int64, or object where a value needs more)."""

    m: np.ndarray
    scale: int
    null: np.ndarray | None = None  # bool: True where there is no value

    def __len__(self) -> int:
        return len(self.m)

    # --- made from ---------------------------------------------------------------------------------------------
    @classmethod
    def of_texts(cls, texts: Sequence[str | None]) -> "Decimals":
        """Plain decimal texts (``None``: no value) at the largest scale among them."""
        parts = [split_text(t) if t is not None else (0, 0) for t in texts]
        scale = max((s for _, s in parts), default=0)
        m = _ints([v * 10 ** (scale - s) for v, s in parts])
        null = np.fromiter((t is None for t in texts), dtype=bool, count=len(texts))
        return cls(m, scale, null if null.any() else None)

    @classmethod
    def of_ints(cls, values: Sequence[int], scale: int, null: np.ndarray | None = None) -> "Decimals":
        """Python ints (mantissas at ``scale``), in int64 where they all fit."""
        return cls(_ints(list(values)), scale, null)

    @classmethod
    def of_parts(cls, m: np.ndarray, s: np.ndarray, null: np.ndarray | None = None) -> "Decimals":
        """Mantissas with a scale each (int64 arrays), at the largest scale among them."""
        if not len(m):
            return cls(np.zeros(0, dtype=np.int64), 0, null)
        scale = int(s.max())
        shift = scale - s
        if _magnitude(m) * 10.0 ** int(shift.max()) < _LIMIT:
            return cls(m * 10 ** shift, scale, null)
        return cls(_ints([int(v) * 10 ** int(k) for v, k in zip(m.tolist(), shift.tolist())]), scale, null)

    @classmethod
    def of_values(cls, values: Sequence[Decimal | None]) -> "Decimals":
        return cls.of_texts([None if v is None else format(v, "f") for v in values])

    # --- read ---------------------------------------------------------------------------------------------------
    def at(self, i: int) -> Decimal | None:
        if self.null is not None and self.null[i]:
            return None
        return to_dec(int(self.m[i]), self.scale)

    def is_null(self) -> np.ndarray:
        return self.null if self.null is not None else np.zeros(len(self.m), dtype=bool)

    def take(self, index: Any) -> "Decimals":
        return Decimals(self.m[index], self.scale, None if self.null is None else self.null[index])

    def field(self, name: str, plus: bool = False, null: np.ndarray | None = None) -> Field:
        """This column as a record field (``null``: more rows without a value)."""
        mask = self.null if null is None else (null if self.null is None else self.null | null)
        return Field(name, "decimal", self.m, scale=self.scale, null=mask, plus=plus)

    # --- arithmetic (exact) -------------------------------------------------------------------------------------
    def rescaled(self, scale: int) -> "Decimals":
        """The same values at ``scale`` (not below the column's own)."""
        k = scale - self.scale
        if k == 0:
            return self
        assert k > 0
        if self.m.dtype != object and _magnitude(self.m) * 10.0**k < _LIMIT:
            return Decimals(self.m * 10**k, scale, self.null)
        return Decimals(_ints([int(v) * 10**k for v in self.m.tolist()]), scale, self.null)

    def times(self, other: "Decimals | Decimal") -> "Decimals":
        """The exact products (row by row, or by one constant)."""
        if isinstance(other, Decimal):
            sign, digits, exp = other.as_tuple()
            c = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
            scale = self.scale - int(exp) if int(exp) < 0 else self.scale
            c = c * 10 ** int(exp) if int(exp) > 0 else c
            if self.m.dtype != object and _magnitude(self.m) * abs(float(c)) < _LIMIT:
                return Decimals(self.m * c, scale, self.null)
            return Decimals(_ints([int(v) * c for v in self.m.tolist()]), scale, self.null)
        null = _either(self.null, other.null)
        if self.m.dtype != object and other.m.dtype != object and _magnitude(self.m) * _magnitude(other.m) < _LIMIT:
            return Decimals(self.m * other.m, self.scale + other.scale, null)
        return Decimals(_ints([int(a) * int(b) for a, b in zip(self.m.tolist(), other.m.tolist())]),
                        self.scale + other.scale, null)

    def minus(self, other: "Decimals") -> "Decimals":
        return self._add(other, -1)

    def plus(self, other: "Decimals") -> "Decimals":
        return self._add(other, 1)

    def _add(self, other: "Decimals", sign: int) -> "Decimals":
        scale = max(self.scale, other.scale)
        a, b = self.rescaled(scale), other.rescaled(scale)
        null = _either(a.null, b.null)
        if a.m.dtype != object and b.m.dtype != object and _magnitude(a.m) + _magnitude(b.m) < _LIMIT:
            return Decimals(a.m + b.m if sign > 0 else a.m - b.m, scale, null)
        return Decimals(_ints([int(x) + sign * int(y) for x, y in zip(a.m.tolist(), b.m.tolist())]), scale, null)

    def group_sums(self, starts: np.ndarray, mask: np.ndarray | None = None) -> "Decimals":
        """The sums of the rows ``starts[i]:starts[i + 1]`` (``starts`` ends with the length), of the rows
        where ``mask`` is true only; 0 for an empty group."""
        m = self.m if mask is None else np.where(mask, self.m, 0)
        if m.dtype != object and float(np.abs(m.astype(np.float64)).sum()) < _LIMIT:
            c = np.concatenate(([0], np.cumsum(m, dtype=np.int64)))
            return Decimals(c[starts[1:]] - c[starts[:-1]], self.scale)
        values = [int(v) for v in m.tolist()]
        return Decimals(_ints([sum(values[a:b]) for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())]),
                        self.scale)

    def running(self, start: int = 0, restart: np.ndarray | None = None) -> "Decimals":
        """Running sums: row ``i`` is ``start`` (a mantissa at this scale) plus the rows up to ``i``; where
        ``restart`` is true the sum begins again from 0 at that row."""
        m = self.m
        n = len(m)
        if m.dtype != object and float(np.abs(m.astype(np.float64)).sum()) + abs(float(start)) < _LIMIT:
            c = np.cumsum(m, dtype=np.int64) + start
            if restart is not None and restart.any():
                at = np.flatnonzero(restart)
                before = np.concatenate(([start], c))[at]  # the running sum just before each restart
                seg = np.cumsum(restart)  # 0 before the first restart
                c = c - np.concatenate(([0], before))[seg]
            return Decimals(c, self.scale)
        out, total = [], start
        flags = restart.tolist() if restart is not None else [False] * n
        for v, again in zip(m.tolist(), flags):
            total = (0 if again else total) + int(v)
            out.append(total)
        return Decimals(_ints(out), self.scale)

    @staticmethod
    def concat(parts: "Sequence[Decimals]") -> "Decimals":
        """The columns one after the other, at the largest scale among them."""
        scale = max(p.scale for p in parts)
        parts = [p.rescaled(scale) for p in parts]
        obj = any(p.m.dtype == object for p in parts)
        m = np.concatenate([p.m.astype(object) if obj else p.m for p in parts])
        null = np.concatenate([p.is_null() for p in parts]) if any(p.null is not None for p in parts) else None
        return Decimals(m, scale, null)

    def divided(self, den: "Decimals", places: int) -> "Decimals":
        """``self / den`` rounded half-even to ``places`` decimals, row by row, exactly (never rounded twice;
        a zero divisor raises ``ZeroDivisionError`` as ``numbers.div_round`` does)."""
        k = den.scale + places - self.scale  # a·10^-sa / (b·10^-sb) at 10^-places: a · 10^(sb + places - sa) / b
        fast = _divided_int64(self.m, den.m, k)
        if fast is not None:
            return Decimals(fast, places, _either(self.null, den.null))
        out = []
        for a, b in zip(self.m.tolist(), den.m.tolist()):
            n, d = int(a), int(b)
            if d == 0:
                raise ZeroDivisionError("division by zero")
            n, d = (n * 10**k, d) if k >= 0 else (n, d * 10 ** (-k))
            if d < 0:
                n, d = -n, -d
            q, r = divmod(n, d)  # floor: 0 <= r < d
            if 2 * r > d or (2 * r == d and q % 2):
                q += 1
            out.append(q)
        return Decimals(_ints(out), places, _either(self.null, den.null))

    def at_least(self, value: Decimal) -> np.ndarray:
        """Where the value is at least ``value`` (exactly)."""
        from decimal import ROUND_CEILING

        bound = int(value.scaleb(self.scale).to_integral_value(rounding=ROUND_CEILING))
        if self.m.dtype != object:
            if abs(bound) >= 2**63:
                return np.full(len(self.m), bound < 0)
            return self.m >= bound
        return np.array([int(v) >= bound for v in self.m.tolist()], dtype=bool)

    def sort_key(self) -> np.ndarray:
        """A key ordering the values (int64, or their ranks where a value needs more)."""
        if self.m.dtype != object:
            return self.m
        values = [int(v) for v in self.m.tolist()]
        order = sorted(range(len(values)), key=values.__getitem__)
        rank = np.empty(len(values), dtype=np.int64)
        r = -1
        for k, i in enumerate(order):
            if k == 0 or values[i] != values[order[k - 1]]:
                r += 1
            rank[i] = r
        return rank


def _divided_int64(n: np.ndarray, d: np.ndarray, k: int) -> np.ndarray | None:
    """``n · 10^k / d`` rounded half-even, row by row, by long division in int64 (a few digits a step, as many as
    keep ``remainder · 10^step`` inside int64); None where a value or the quotient might not fit (the caller
    then divides Python ints)."""
    if n.dtype == object or d.dtype == object or not len(n) or k < 0:
        return None
    if not d.all():
        raise ZeroDivisionError("division by zero")
    if _magnitude(n) >= _LIMIT or _magnitude(d) >= _LIMIT:
        return None
    an, ad = np.abs(n), np.abs(d)
    if float((an / ad).max()) * 10.0**k >= 2.0**61:
        return None
    step = 0
    while float(ad.max()) * 10.0 ** (step + 1) < _LIMIT and step < 18:
        step += 1
    if step == 0 and k > 0:
        return None
    q, r = np.divmod(an, ad)
    left = k
    while left > 0:
        s = min(step, left)
        digits, r = np.divmod(r * 10**s, ad)
        q = q * 10**s + digits
        left -= s
    twice = r * 2  # r < |d| < 2^62
    q = q + ((twice > ad) | ((twice == ad) & (q % 2 == 1)))
    return np.where((n < 0) != (d < 0), -q, q)


def _either(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else a | b
