"""Instrument metadata of Binance USDⓈ-M and Bybit v5 (SPEC section 15): the built-in table, saved replies."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from indicator_core.errors import ConfigError, UnknownInstrumentError
from indicator_core.instruments import InstrumentTable


def test_common_venue_symbols_are_built_in_and_an_unknown_one_is_a_clear_error() -> None:
    t = InstrumentTable()
    btc = t.get("BTCUSDT")
    assert (btc.kind, btc.ct_val, btc.ct_val_ccy, btc.base_ccy, btc.quote_ccy) == ("linear", 1, "BTC", "BTC", "USDT")
    inv = t.get("BTCUSD")
    assert (inv.kind, inv.ct_val, inv.ct_val_ccy, inv.base_ccy, inv.quote_ccy) == ("inverse", 1, "USD", "BTC", "USD")
    assert t.get("1000PEPEUSDT").base_ccy == "1000PEPE"
    with pytest.raises(UnknownInstrumentError, match="(?s)'NEWCOINUSDT'.*exchangeInfo"):
        t.get("NEWCOINUSDT")


def test_saved_replies_of_each_venue_extend_the_table(tmp_path: Path) -> None:
    # the shapes of the venues' replies, reduced to the fields read (values as the venues list them)
    binance = {"timezone": "UTC", "symbols": [
        {"symbol": "NEWCOINUSDT", "contractType": "PERPETUAL", "baseAsset": "NEWCOIN", "quoteAsset": "USDT",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00010"}]},
        {"symbol": "OLDUSDT", "contractType": "", "baseAsset": "OLD", "quoteAsset": "USDT", "filters": []},
    ]}
    bybit = {"retCode": 0, "result": {"category": "inverse", "list": [
        {"symbol": "MNTUSD", "contractType": "InversePerpetual", "baseCoin": "MNT", "quoteCoin": "USD",
         "priceFilter": {"tickSize": "0.0001"}},
        {"symbol": "NEWCOINUSDT", "contractType": "LinearPerpetual", "baseCoin": "NEWCOIN", "quoteCoin": "USDT",
         "priceFilter": {"tickSize": "0.001"}},
    ]}}
    t = InstrumentTable()
    (tmp_path / "b.json").write_bytes(orjson.dumps(binance))
    t.load_file(tmp_path / "b.json")
    assert t.get("NEWCOINUSDT").tick_size == Decimal("0.00010")
    with pytest.raises(UnknownInstrumentError):
        t.get("OLDUSDT")  # a delisted symbol (no contract type) is not taken
    (tmp_path / "y.json").write_bytes(orjson.dumps(bybit))
    t.load_file(tmp_path / "y.json")
    mnt = t.get("MNTUSD")
    assert (mnt.kind, mnt.ct_val, mnt.ct_val_ccy) == ("inverse", 1, "USD")
    (tmp_path / "bad.json").write_bytes(b'{"symbols": [{"symbol": "X"}]}')
    with pytest.raises(ConfigError, match="bad.json: not a usable instruments reply"):
        t.load_file(tmp_path / "bad.json")
