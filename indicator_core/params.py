"""Parameter types shared by indicators' ``Params`` models."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel
from pydantic_core import to_jsonable_python

from .timeutil import parse_anchor

Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
"""A candle timeframe; every one divides a UTC day."""

Unit = Literal["quote", "base", "contracts"]
"""A volume unit: quote notional (USD for USDT/USD pairs), base currency, or contracts (``sz``)."""


def _anchor(value: str) -> str:
    parse_anchor(value)
    return value


SessionAnchor = Annotated[str, AfterValidator(_anchor)]
"""A daily session start, ``"HH:MM"`` in UTC."""


def _width(value: str) -> str:
    if value == "auto":
        return value
    try:
        d = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"must be \"auto\" or a positive decimal price width, got {value!r}") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"must be \"auto\" or a positive decimal price width, got {value!r}")
    return value


PriceWidth = Annotated[str, AfterValidator(_width)]
"""``"auto"`` or a positive decimal price width (a bucket's step, a footprint row), e.g. ``"10"``."""


def canonical_decimal(value: Decimal) -> str:
    """One spelling per value: plain notation, no exponent, no trailing zeros (``1E+5``, ``100000.0`` -> ``100000``).

    Exact: the digits are those of ``value`` (a TOML float reaches a Decimal
    field through its shortest repr, ``1e5`` -> ``Decimal("100000.0")``), never
    rounded by a context.
    """
    if not value.is_finite():
        return str(value)
    sign, digits, exp = value.as_tuple()
    text = "".join(map(str, digits)).lstrip("0") or "0"
    if text == "0":
        return "0"
    if exp >= 0:
        body = text + "0" * exp
    else:
        places = -exp
        text = text.rjust(places + 1, "0")
        body = (text[:-places] + "." + text[-places:]).rstrip("0").rstrip(".")
    return ("-" if sign else "") + body


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return canonical_decimal(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def canonical_params(params: BaseModel) -> dict[str, Any]:
    """An indicator's parameters as JSON data in which equal values are equal (what the fingerprint hashes).

    Decimal values are written by :func:`canonical_decimal`, so a config that
    spells a number differently (``1e5``, ``100000``, ``"100000.0"``) is the
    same setting; everything else is pydantic's JSON form.
    """
    return to_jsonable_python(_canonical(params.model_dump(mode="python")))
