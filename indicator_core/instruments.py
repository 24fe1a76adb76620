"""Contract definitions: how a trade's size becomes base quantity and quote notional.

SPEC section 1.  The built-in table holds common OKX instrument families; a
user extends or overrides it in the config (``[instruments."X"]``), with saved
``/api/v5/public/instruments`` replies (``instruments_files``), or from a
plugin through the ``register_instruments`` hook.  An instrument that none of
these define is an error naming the instrument and how to declare it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Literal

import orjson

from .errors import ConfigError, UnknownInstrumentError

Kind = Literal["linear", "inverse", "spot"]


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument and its contract terms.

    ``ct_val`` is the contract value in ``ct_val_ccy`` (0.01 BTC for
    BTC-USDT-SWAP, 100 USD for BTC-USD-SWAP); it is 1 for spot, where the size
    is already base currency.
    """

    inst_id: str
    kind: Kind
    ct_val: Decimal
    ct_val_ccy: str

    @property
    def base_ccy(self) -> str:
        return self.inst_id.split("-")[0]

    @property
    def quote_ccy(self) -> str:
        parts = self.inst_id.split("-")
        return parts[1] if len(parts) > 1 else ""


# Contract values of OKX instrument families (the same for the perpetual swap
# and the dated futures of a family), from OKX's public instrument list.
_LINEAR_FAMILIES: dict[str, str] = {
    "BTC-USDT": "0.01", "ETH-USDT": "0.1", "SOL-USDT": "1", "XRP-USDT": "100",
    "DOGE-USDT": "1000", "LTC-USDT": "1", "BCH-USDT": "0.1", "ADA-USDT": "100",
    "AVAX-USDT": "1", "LINK-USDT": "1", "DOT-USDT": "1", "MATIC-USDT": "10",
    "TRX-USDT": "1000", "TON-USDT": "1", "UNI-USDT": "1", "ATOM-USDT": "1",
    "ETC-USDT": "10", "FIL-USDT": "0.1", "APT-USDT": "1", "ARB-USDT": "10",
    "OP-USDT": "1", "SUI-USDT": "1", "PEPE-USDT": "10000000", "SHIB-USDT": "1000000",
    "BTC-USDC": "0.0001", "ETH-USDC": "0.001",
}
_INVERSE_FAMILIES: dict[str, str] = {
    "BTC-USD": "100", "ETH-USD": "10", "SOL-USD": "10", "XRP-USD": "10", "DOGE-USD": "10",
    "LTC-USD": "10", "BCH-USD": "10", "ADA-USD": "10", "DOT-USD": "10", "LINK-USD": "10",
    "UNI-USD": "10", "FIL-USD": "10", "ETC-USD": "10", "TRX-USD": "10", "AVAX-USD": "10",
    "ATOM-USD": "10", "TON-USD": "10",
}

_DERIVATIVE = re.compile(r"^([A-Z0-9]+-[A-Z0-9]+)-(SWAP|\d{6})$")
_SPOT = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")

HOW_TO_DECLARE = (
    'declare it in the config file, e.g.\n'
    '  [instruments."{inst}"]\n'
    '  kind = "linear"        # linear | inverse | spot\n'
    '  ct_val = "0.01"        # contract value (ctVal)\n'
    '  ct_val_ccy = "BTC"     # ctValCcy\n'
    'or list a saved /api/v5/public/instruments reply under instruments_files = [...]'
)


def _builtin(inst_id: str) -> Instrument | None:
    m = _DERIVATIVE.match(inst_id)
    if m:
        family = m.group(1)
        if family in _LINEAR_FAMILIES:
            return Instrument(inst_id, "linear", Decimal(_LINEAR_FAMILIES[family]), family.split("-")[0])
        if family in _INVERSE_FAMILIES:
            return Instrument(inst_id, "inverse", Decimal(_INVERSE_FAMILIES[family]), "USD")
        return None
    if _SPOT.match(inst_id):
        # Spot sizes are in base currency: nothing about the contract is assumed.
        return Instrument(inst_id, "spot", Decimal(1), inst_id.split("-")[0])
    return None


def instruments_from_okx_reply(data: bytes, source: str) -> list[Instrument]:
    """Instruments of a saved ``/api/v5/public/instruments`` reply (SPOT, SWAP, FUTURES)."""
    try:
        doc = orjson.loads(data)
        items = doc["data"] if isinstance(doc, dict) else doc
        out = []
        for item in items:
            inst_type = item.get("instType")
            inst_id = item["instId"]
            if inst_type == "SPOT":
                out.append(Instrument(inst_id, "spot", Decimal(1), item.get("baseCcy") or inst_id.split("-")[0]))
            elif inst_type in ("SWAP", "FUTURES"):
                kind = item["ctType"]
                if kind not in ("linear", "inverse"):
                    raise ValueError(f"{inst_id}: ctType {kind!r} is neither linear nor inverse")
                ct_val = Decimal(item["ctVal"]) * Decimal(item.get("ctMult") or "1")
                out.append(Instrument(inst_id, kind, ct_val, item["ctValCcy"]))
            # options and others carry no trades this project reads: skipped
        return out
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ConfigError(
            f"{source}: not a usable /api/v5/public/instruments reply ({exc}); "
            "save the whole JSON reply of the endpoint to this file"
        ) from exc


class InstrumentTable:
    """Resolves an instrument id to its :class:`Instrument`; overrides win over the built-ins."""

    def __init__(self, overrides: Iterable[Instrument] = ()) -> None:
        self._overrides: dict[str, Instrument] = {}
        for inst in overrides:
            self.add(inst)

    def add(self, inst: Instrument) -> None:
        if inst.ct_val <= 0:
            raise ConfigError(f"instrument {inst.inst_id}: ct_val must be positive, got {inst.ct_val}")
        self._overrides[inst.inst_id] = inst

    def load_file(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"instruments_files: cannot read {path}: {exc.strerror}") from exc
        for inst in instruments_from_okx_reply(data, str(path)):
            self.add(inst)

    def get(self, inst_id: str) -> Instrument:
        inst = self._overrides.get(inst_id) or _builtin(inst_id)
        if inst is None:
            raise UnknownInstrumentError(
                f"unknown instrument {inst_id!r}: its contract value is not in the built-in table; "
                + HOW_TO_DECLARE.format(inst=inst_id)
            )
        return inst
