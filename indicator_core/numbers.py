"""Exact decimal arithmetic and the number formats of SPEC section 3.

Money, quantities and prices travel as :class:`decimal.Decimal` values that are
always exact: they come from decimal strings or from integer sums with a known
decimal scale, and they are only ever added, subtracted, multiplied or
compared.  The single place where a real division happens is
:func:`div_round`, which rounds half-even exactly: no intermediate rounding
can change its result.

``EXACT`` is the context the engine runs under: a precision far above anything
a trade file can need and the ``Inexact`` signal trapped, so that an operation
that would round raises instead of silently losing a digit.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Callable

__all__ = [
    "EXACT",
    "ZERO",
    "parse_decimal",
    "to_dec",
    "scaled",
    "div_round",
    "fmt",
    "fmt_signed",
    "fmt_round",
    "fmt_round_signed",
    "LastText",
    "PRICE_PLACES",
    "RATIO_PLACES",
]

EXACT = decimal.Context(
    prec=200,
    rounding=ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact],
)

# For the explicit, documented roundings of SPEC section 3 (never for sums).
ROUNDING = EXACT.copy()
ROUNDING.traps[decimal.Inexact] = False

ZERO = Decimal(0)
PRICE_PLACES = 8
RATIO_PLACES = 4


class DecimalFormatError(ValueError):
    """A text is not a plain non-negative decimal number."""


def parse_decimal(text: str) -> tuple[int, int]:
    """Parse a plain decimal string into ``(mantissa, scale)``, exactly.

    ``"60000.10"`` becomes ``(6000010, 2)``, meaning 6000010 × 10⁻².  Only
    plain notation is accepted (digits with an optional single point); signs
    and exponents are refused because OKX never sends them for prices or sizes.
    """
    head, dot, tail = text.partition(".")
    if not head and not tail:
        raise DecimalFormatError(f"not a number: {text!r}")
    digits = head + tail
    if not digits.isdigit() or not digits.isascii() or (dot and not tail):
        raise DecimalFormatError(f"not a plain decimal number: {text!r}")
    return int(digits), len(tail)


TENTHS = tuple(Decimal(1).scaleb(-s) for s in range(40))  # 10^-s, for the scales trades carry
_multiply = EXACT.multiply


def to_dec(value: int, scale: int) -> Decimal:
    """The exact decimal ``value × 10^-scale``."""
    if 0 <= scale < 40:  # one multiplication by a power of ten: exact, and cheaper than scaleb
        return _multiply(Decimal(int(value)), TENTHS[scale])
    return Decimal(int(value)).scaleb(-scale, EXACT)


def decimal_at(m: int, scale: int, shown: int) -> Decimal:
    """The decimal ``m × 10^-scale`` written with ``shown`` decimals (at most ``scale``; the value has no more):
    the exponent a sum of decimals would have."""
    return to_dec(m // 10 ** (scale - shown), shown)


def scaled(value: Decimal, scale: int) -> int:
    """``value × 10^scale`` as an int; raises if that is not an integer."""
    out = value.scaleb(scale, EXACT)
    integral = out.to_integral_value(context=EXACT)
    if integral != out:
        raise ValueError(f"{value} has more than {scale} decimal places")
    return int(integral)


def floor_scaled(value: Decimal, scale: int) -> int:
    """``floor(value × 10^scale)``: for an int q, ``q > value·10^s  ⇔  q > floor(...)``."""
    out = value.scaleb(scale, EXACT)
    return int(out.to_integral_value(rounding=decimal.ROUND_FLOOR, context=ROUNDING))


def ceil_scaled(value: Decimal, scale: int) -> int:
    """``ceil(value × 10^scale)``: for an int q, ``q >= value·10^s  ⇔  q >= ceil(...)``."""
    out = value.scaleb(scale, EXACT)
    return int(out.to_integral_value(rounding=decimal.ROUND_CEILING, context=ROUNDING))


# div_round's quotient: this many significant digits, rounded toward zero except that a last digit of 0 or 5 is
# rounded away from it (ROUND_05UP, decimal's round-to-odd) whenever the division is inexact.
_QUOTIENT_DIGITS = 40
_QUOTIENT = decimal.Context(prec=_QUOTIENT_DIGITS, rounding=decimal.ROUND_05UP, Emin=-999999, Emax=999999,
                            traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
_HALF_EVEN = decimal.Context(prec=_QUOTIENT_DIGITS, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999,
                             traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
_STEPS = tuple(Decimal(1).scaleb(-p) for p in range(_QUOTIENT_DIGITS))  # 10^-places, the quantum of a result


def div_round(num: Decimal, den: Decimal, places: int) -> Decimal:
    """``num / den`` rounded half-even to ``places`` decimals, exactly (never rounded twice).

    The quotient is first taken to 40 significant digits rounding toward
    zero, except that a last digit of 0 or 5 goes away from zero when the
    division is inexact (``ROUND_05UP``).  An inexact quotient then never ends
    in 0 or 5, so it never looks like a tie, or like an exact value, at a
    rounding point two or more digits above its last digit; rounding it
    half-even to ``places`` there gives the exact result.  A quotient with
    too many digits for that margin goes to :func:`div_round_exact`.  Both
    are held to fractions by the tests, ties included.
    """
    if not den:
        raise ZeroDivisionError("division by zero")
    q = _QUOTIENT.divide(num, den)
    if 0 <= places < _QUOTIENT_DIGITS and q.adjusted() + places + 3 <= _QUOTIENT_DIGITS:
        q = q.quantize(_STEPS[places], context=_HALF_EVEN)
        return q if q else q.copy_abs()  # 0, never -0
    return div_round_exact(num, den, places)


def div_round_exact(num: Decimal, den: Decimal, places: int) -> Decimal:
    """:func:`div_round` with integer arithmetic only, for any size (about twice as slow).

    ``divmod`` of two decimals gives the integer quotient (truncated toward
    zero) and the remainder exactly, so the one rounding is decided here on
    exact values, never on a quotient already rounded to some precision.
    """
    if den == 0:
        raise ZeroDivisionError("division by zero")
    n = num.scaleb(places, EXACT)
    q, r = EXACT.divmod(n, den)  # the context's methods: exact whatever the caller's context
    twice, size = EXACT.multiply(r.copy_abs(), 2), den.copy_abs()
    if twice > size or (twice == size and EXACT.remainder(q, 2)):
        q = EXACT.add(q, 1) if (n < 0) == (den < 0) else EXACT.subtract(q, 1)
    if not q:
        q = q.copy_abs()  # 0, never -0
    return q.scaleb(-places, EXACT)


def step_125(x: Decimal) -> Decimal:
    """The value of the series 1, 2, 5 × 10^k nearest to ``x`` by ratio (a tie between two goes to the
    lower): section 11's bucket width and section 18's footprint row, from 1 bp of a price."""
    e = Decimal(1).scaleb(x.adjusted())  # 10^k <= x < 10^(k+1)
    series = [e, e * 2, e * 5, e * 10]
    for lo, hi in zip(series, series[1:]):
        if lo <= x < hi:
            return lo if x * x < lo * hi else hi
    raise AssertionError(x)  # pragma: no cover


def fmt(value: Decimal) -> str:
    """Plain notation with no exponent and no trailing zeros: ``"5200000"``, ``"0.5"``."""
    text = str(value)  # plain for every value built from a price or size; an exponent only at extremes
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def fmt_signed(value: Decimal) -> str:
    """Like :func:`fmt`, with a ``+`` on positive values: ``"+1000000"``, ``"-25.5"``, ``"0"``."""
    text = fmt(value)
    return "+" + text if value > 0 else text


def fmt_round(value: Decimal, places: int) -> str:
    """Round half-even to ``places`` decimals, then format plainly."""
    return fmt(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=ROUNDING))


def fmt_round_signed(value: Decimal, places: int) -> str:
    """Round half-even to ``places`` decimals, then format with a sign."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=ROUNDING)
    return fmt_signed(rounded)


class LastText:
    """The text of a value that often comes back as the same object, formatted again only for a new one.

    A running sum that nothing was added to (an empty minute) keeps its
    object, and so does the price of a run of empty bars; any change makes a
    new :class:`~decimal.Decimal`, which is formatted.
    """

    __slots__ = ("format", "value", "text")

    def __init__(self, format: Callable[[Decimal], str] = fmt) -> None:
        self.format = format
        self.value: Decimal | None = None
        self.text = ""

    def of(self, value: Decimal) -> str:
        if value is not self.value:
            self.value, self.text = value, self.format(value)
        return self.text
