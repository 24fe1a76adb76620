"""Parameter types shared by indicators' ``Params`` models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator

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
