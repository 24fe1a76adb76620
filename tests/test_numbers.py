"""Exact arithmetic and number formats (SPEC sections 1 and 3), checked against fractions."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core.errors import ConfigError, UnknownInstrumentError
from indicator_core.instruments import Instrument, InstrumentTable, instruments_from_okx_reply
from indicator_core.numbers import EXACT, div_round, div_round_exact, fmt, fmt_round, fmt_signed, parse_decimal, to_dec
from indicator_core.trade_batch import derive_quantities, normalize
from tests.vaults import OKX

decimals = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("99999999"), places=8, allow_nan=False)


def _half_even(fr: Fraction, places: int) -> Fraction:
    scaled = fr * 10**places
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Fraction(floor, 10**places)


@given(a=st.integers(-(10**30), 10**30), b=st.integers(1, 10**20), places=st.integers(0, 12), sa=st.integers(0, 10),
       sb=st.integers(0, 10), negative=st.booleans())
def test_div_round_is_exact_half_even(a: int, b: int, places: int, sa: int, sb: int, negative: bool) -> None:
    """Exact under the caller's context too (this test runs under Python's default, 28 digits)."""
    b = -b if negative else b
    num, den = to_dec(a, sa), to_dec(b, sb)
    expected = _half_even(Fraction(a, 10**sa) / Fraction(b, 10**sb), places)
    got = div_round(num, den, places)
    assert Fraction(got) == expected
    assert got.as_tuple().exponent == -places
    assert not (got == 0 and got.is_signed())  # never -0


@given(k=st.one_of(st.integers(-(10**6), 10**6), st.integers(-(10**40), 10**40)), b=st.integers(1, 10**20),
       places=st.integers(0, 12), sb=st.integers(0, 12), near=st.sampled_from([0, 1, -1]), negative=st.booleans())
def test_div_round_at_ties_and_next_to_them(k: int, b: int, places: int, sb: int, near: int, negative: bool) -> None:
    """Quotients exactly half-way between two results, and a hair either side of half-way: both roads
    (the 40-digit quotient rounded once more, and integer arithmetic) give the fraction's rounding, also
    where the quotient has more digits than the first road keeps (the second takes those)."""
    den = to_dec(-b if negative else b, sb)
    num = EXACT.multiply(EXACT.multiply(den, Decimal(2 * k + 1)), Decimal(5).scaleb(-places - 1))  # den x a tie
    num = EXACT.add(num, Decimal(near).scaleb(-places - 30))  # and a hair off it
    expected = _half_even(Fraction(num) / Fraction(den), places)
    for road in (div_round, div_round_exact):
        got = road(num, den, places)
        assert Fraction(got) == expected, road
        assert got.as_tuple().exponent == -places
        assert not (got == 0 and got.is_signed())


def test_div_round_by_zero_raises() -> None:
    for road in (div_round, div_round_exact):
        with pytest.raises(ZeroDivisionError):
            road(Decimal(1), Decimal(0), 2)
        with pytest.raises(ZeroDivisionError):
            road(Decimal(0), Decimal("0.00"), 2)


@pytest.mark.parametrize("a,b,expected", [(5, 2, "2"), (7, 2, "4"), (-5, 2, "-2"), (-7, 2, "-4"), (7, -2, "-4"),
                                          (-7, -2, "4"), (-1, 3, "0"), (1, -3, "0")])
def test_div_round_ties_and_signs(a: int, b: int, expected: str) -> None:
    assert str(div_round(Decimal(a), Decimal(b), 0)) == expected


@pytest.mark.parametrize("text,expected", [
    ("5200000", "5200000"), ("11654.80800", "11654.808"), ("0.50", "0.5"), ("0.000", "0"), ("100.", None),
    ("1E+2", None),
])
def test_fmt_plain(text: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            parse_decimal(text)
        return
    m, s = parse_decimal(text)
    assert fmt(to_dec(m, s)) == expected


def test_fmt_never_uses_exponents() -> None:
    assert fmt(Decimal("5.2E+6")) == "5200000"
    assert fmt(Decimal("1E-9")) == "0.000000001"
    assert fmt(Decimal("-0")) == "0"
    assert fmt_signed(Decimal("1000000")) == "+1000000"
    assert fmt_signed(Decimal("-25.50")) == "-25.5"
    assert fmt_signed(Decimal("0.00")) == "0"
    assert fmt_round(Decimal("2.00005"), 4) == "2"  # half-even: 2.0000|5 -> 2.0000
    assert fmt_round(Decimal("2.00015"), 4) == "2.0002"


@given(value=decimals)
def test_parse_decimal_round_trips(value: Decimal) -> None:
    text = format(value, "f")
    m, s = parse_decimal(text)
    assert to_dec(m, s) == value


def test_exact_context_refuses_to_round() -> None:
    with decimal.localcontext(EXACT):
        with pytest.raises(decimal.Inexact):
            Decimal(1) / Decimal(3)


@settings(max_examples=200)
@given(
    pxs=st.lists(decimals, min_size=1, max_size=20),
    szs=st.lists(decimals, min_size=20, max_size=20),
    kind=st.sampled_from(["linear", "inverse", "spot"]),
    ct=st.sampled_from(["0.01", "0.1", "100", "10", "1000000", "0.0001"]),
)
def test_quantities_match_decimal_definitions(pxs: list[Decimal], szs: list[Decimal], kind: str, ct: str) -> None:
    inst = Instrument("X-USD-SWAP", kind, Decimal(ct), "USD")  # type: ignore[arg-type]
    szs = szs[: len(pxs)]
    pm = [parse_decimal(format(p, "f")) for p in pxs]
    sm = [parse_decimal(format(s, "f")) for s in szs]
    px, ps = normalize(np.array([m for m, _ in pm], dtype=np.int64), np.array([s for _, s in pm]))
    sz, ss = normalize(np.array([m for m, _ in sm], dtype=np.int64), np.array([s for _, s in sm]))
    base, bs, quote, qs = derive_quantities(inst, px, ps, sz, ss)
    ctv = Fraction(ct)
    for i, (p, s) in enumerate(zip(pxs, szs)):
        p, s = Fraction(p), Fraction(s)
        if kind == "linear":
            exp_base, exp_quote = s * ctv, p * s * ctv
        elif kind == "spot":
            exp_base, exp_quote = s, p * s
        else:
            exp_quote = s * ctv
            exp_base = _half_even(exp_quote / p, 12)
        assert Fraction(int(base[i]), 10**bs) == exp_base
        assert Fraction(int(quote[i]), 10**qs) == exp_quote
    # sums of the columns are exact whatever their size
    assert Fraction(int(quote.sum()), 10**qs) == sum(
        (Fraction(int(q), 10**qs) for q in quote), Fraction(0)
    )


def test_instrument_table_builtins_and_errors() -> None:
    table = InstrumentTable()
    assert table.get("BTC-USDT-SWAP") == Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC")
    assert table.get("ETH-USDT-SWAP").ct_val == Decimal("0.1")
    assert table.get("BTC-USD-SWAP").kind == "inverse" and table.get("BTC-USD-SWAP").ct_val == 100
    assert table.get("BTC-USD-220527").ct_val == 100
    assert table.get("UNI-USD-SWAP").ct_val == 10
    assert table.get("MATIC-USDT-SWAP").ct_val == 10
    assert table.get("BTC-USDT").kind == "spot"
    with pytest.raises(UnknownInstrumentError) as err:
        table.get("FOO-USDT-SWAP")
    assert "FOO-USDT-SWAP" in str(err.value) and '[instruments."FOO-USDT-SWAP"]' in str(err.value)


def test_instruments_from_saved_okx_reply() -> None:
    insts = {i.inst_id: i for i in instruments_from_okx_reply((OKX / "instruments-swap.json").read_bytes(), "x")}
    assert insts["BTC-USD-SWAP"] == Instrument("BTC-USD-SWAP", "inverse", Decimal(100), "USD")
    assert insts["ETH-USDT-SWAP"] == Instrument("ETH-USDT-SWAP", "linear", Decimal("0.1"), "ETH")
    assert insts["BTC-USDT-SWAP"].ct_val == Decimal("0.01")
    with pytest.raises(ConfigError):
        instruments_from_okx_reply(b'{"data": [{"instType": "SWAP"}]}', "bad.json")
