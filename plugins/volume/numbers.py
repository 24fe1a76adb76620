"""Decimals taken apart into integers, exactly."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)  # an empty minute's total, told apart by identity (VolumeAnalyzer._remember)


def split_exact(value: Decimal) -> tuple[int, int]:
    """``(mantissa, scale)`` with ``value = mantissa × 10^-scale`` at the scale its exponent shows:
    ``Decimal("1.50")`` is ``(150, 2)``, ``Decimal("1E+2")`` is ``(100, 0)``."""
    sign, digits, exp = value.as_tuple()
    m = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    return (m, -int(exp)) if int(exp) < 0 else (m * 10 ** int(exp), 0)
