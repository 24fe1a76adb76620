"""Contract definitions: how a trade's size becomes base quantity and quote notional.

SPEC sections 1 and 15.  The built-in table holds common OKX instrument
families and the common Binance USDⓈ-M and Bybit v5 perpetual symbols; a user
extends or overrides it in the config (``[instruments."X"]``), with saved
replies listed under ``instruments_files`` (OKX ``/api/v5/public/instruments``,
Binance ``/fapi/v1/exchangeInfo``, Bybit ``/v5/market/instruments-info``), or
from a plugin through the ``register_instruments`` hook.  An instrument that none of
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
    is already base currency, and for Binance and Bybit perpetuals, whose sizes
    are base quantities (linear) or USD (Bybit's inverse ``BTCUSD``).
    ``tick_size`` is the price increment where a reply or the table gives it
    (information only: no output depends on it).
    """

    inst_id: str
    kind: Kind
    ct_val: Decimal
    ct_val_ccy: str
    tick_size: Decimal | None = None

    @property
    def base_ccy(self) -> str:
        if "-" in self.inst_id:
            return self.inst_id.split("-")[0]
        return _split_symbol(self.inst_id)[0]

    @property
    def quote_ccy(self) -> str:
        if "-" in self.inst_id:
            parts = self.inst_id.split("-")
            return parts[1] if len(parts) > 1 else ""
        return _split_symbol(self.inst_id)[1]


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

# Binance USDⓈ-M and Bybit v5 linear perpetuals: the venue's own symbol, sizes in base currency
# (ct_val 1); their tick sizes as the venues list them.
_VENUE_LINEAR: dict[str, str] = {
    "BTCUSDT": "0.10", "ETHUSDT": "0.01", "SOLUSDT": "0.010", "XRPUSDT": "0.0001", "DOGEUSDT": "0.00001",
    "BNBUSDT": "0.010", "ADAUSDT": "0.0001", "AVAXUSDT": "0.0010", "LINKUSDT": "0.001", "DOTUSDT": "0.001",
    "LTCUSDT": "0.01", "BCHUSDT": "0.01", "TRXUSDT": "0.00001", "TONUSDT": "0.0001", "UNIUSDT": "0.0010",
    "ATOMUSDT": "0.001", "ETCUSDT": "0.001", "FILUSDT": "0.001", "APTUSDT": "0.0001", "ARBUSDT": "0.0001",
    "OPUSDT": "0.0001", "SUIUSDT": "0.0001", "NEARUSDT": "0.001", "1000PEPEUSDT": "0.0000001",
    "1000SHIBUSDT": "0.000001", "BTCUSDC": "0.1", "ETHUSDC": "0.01",
}
# Bybit v5 inverse perpetuals: sizes in USD (ct_val 1 USD)
_VENUE_INVERSE: dict[str, str] = {
    "BTCUSD": "0.50", "ETHUSD": "0.05", "SOLUSD": "0.010", "XRPUSD": "0.0001", "DOGEUSD": "0.0001",
    "ADAUSD": "0.0001", "DOTUSD": "0.001", "LTCUSD": "0.01", "EOSUSD": "0.001",
}
_QUOTES = ("USDT", "USDC", "USD")


def _split_symbol(symbol: str) -> tuple[str, str]:
    """A venue symbol as (base, quote): ``BTCUSDT`` -> (``BTC``, ``USDT``); unknown quotes give (symbol, "")."""
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


_DERIVATIVE = re.compile(r"^([A-Z0-9]+-[A-Z0-9]+)-(SWAP|\d{6})$")
_SPOT = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")

HOW_TO_DECLARE = (
    'declare it in the config file, e.g.\n'
    '  [instruments."{inst}"]\n'
    '  kind = "linear"        # linear | inverse | spot\n'
    '  ct_val = "0.01"        # contract value (ctVal)\n'
    '  ct_val_ccy = "BTC"     # ctValCcy\n'
    'or list a saved instruments reply under instruments_files = [...] (OKX /api/v5/public/instruments, '
    'Binance /fapi/v1/exchangeInfo or Bybit /v5/market/instruments-info, saved whole)'
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
    if inst_id in _VENUE_LINEAR:
        return Instrument(inst_id, "linear", Decimal(1), _split_symbol(inst_id)[0], Decimal(_VENUE_LINEAR[inst_id]))
    if inst_id in _VENUE_INVERSE:
        return Instrument(inst_id, "inverse", Decimal(1), "USD", Decimal(_VENUE_INVERSE[inst_id]))
    return None


def instruments_from_binance_reply(doc: dict, source: str) -> list[Instrument]:
    """USDⓈ-M perpetuals and futures of a saved ``/fapi/v1/exchangeInfo`` reply (sizes in base: ct_val 1)."""
    out = []
    for item in doc["symbols"]:
        if item["contractType"] not in ("PERPETUAL", "CURRENT_QUARTER", "NEXT_QUARTER", "TRADIFI_PERPETUAL"):
            continue  # a settling or unknown contract
        tick = next((Decimal(f["tickSize"]) for f in item.get("filters", ()) if f.get("filterType") == "PRICE_FILTER"),
                    None)
        out.append(Instrument(item["symbol"], "linear", Decimal(1), item["baseAsset"], tick))
    return out


def instruments_from_bybit_reply(doc: dict, source: str) -> list[Instrument]:
    """Linear and inverse contracts of a saved ``/v5/market/instruments-info`` reply."""
    out = []
    for item in doc["result"]["list"]:
        contract = item.get("contractType", "")
        tick = Decimal(item["priceFilter"]["tickSize"]) if item.get("priceFilter") else None
        if contract.startswith("Linear"):
            out.append(Instrument(item["symbol"], "linear", Decimal(1), item["baseCoin"], tick))
        elif contract.startswith("Inverse"):
            out.append(Instrument(item["symbol"], "inverse", Decimal(1), "USD", tick))
    return out


def instruments_from_reply(data: bytes, source: str) -> list[Instrument]:
    """The instruments of a saved reply of any venue's instrument list (told apart by its shape)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not JSON ({exc}); save the whole reply of the instruments endpoint") from exc
    try:
        if isinstance(doc, dict) and "symbols" in doc:
            return instruments_from_binance_reply(doc, source)
        if isinstance(doc, dict) and isinstance(doc.get("result"), dict) and "list" in doc["result"]:
            return instruments_from_bybit_reply(doc, source)
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise ConfigError(f"{source}: not a usable instruments reply ({exc!r}); save the whole JSON reply of the "
                          "endpoint to this file") from exc
    return instruments_from_okx_reply(data, source)


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
        for inst in instruments_from_reply(data, str(path)):
            self.add(inst)

    def get(self, inst_id: str) -> Instrument:
        inst = self._overrides.get(inst_id) or _builtin(inst_id)
        if inst is None:
            raise UnknownInstrumentError(
                f"unknown instrument {inst_id!r}: its contract value is not in the built-in table; "
                + HOW_TO_DECLARE.format(inst=inst_id)
            )
        return inst


INVERSE_BASE_PLACES = 12  # an inverse contract's base quantity is rounded here, once per trade (SPEC section 1)


def contract_amounts(inst: Instrument, px: Decimal, sz: Decimal) -> tuple[Decimal, Decimal]:
    """``(base, quote)`` of ``sz`` contracts of ``inst`` at ``px``, exactly as a trade's (SPEC section 1):
    linear ``base = sz × ctVal``, ``quote = px × base``; inverse ``quote = sz × ctVal``, ``base = quote / px``
    rounded half-even to 12 places; spot ``base = sz``."""
    from .numbers import EXACT, div_round

    if inst.kind == "inverse":
        quote = EXACT.multiply(sz, inst.ct_val)
        return div_round(quote, px, INVERSE_BASE_PLACES), quote
    base = EXACT.multiply(sz, inst.ct_val) if inst.kind != "spot" else sz
    return base, EXACT.multiply(px, base)
