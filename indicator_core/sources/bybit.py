"""Bybit v5 trades (SPEC section 15): ``publicTrade`` pushes and the daily ``.csv.gz`` archives.

A push ``{"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts", "data": [item, ...]}``
holds trades ``{"T", "s", "S", "v", "p", "L", "i", "BT"}``: ts = ``T``, side =
``S`` lower-cased (the taker's side), px = ``p``, sz = ``v``, trade id = ``i``.
An archive row ``timestamp,symbol,side,size,price,tickDirection,trdMatchID,...``
has its time in seconds with a fraction: ts is that × 1000 rounded down to the
millisecond, the trade id is ``trdMatchID``.

Bybit's trade ids are not integers (a UUID in the stream, a UUID or a number
in the archives), so they are neither ordered nor consecutive: duplicates
are recognised by id near the trade's minute, gaps are never judged.  The
columns carry each id as :func:`id_key` (a stable 63-bit digest, the same in
every process) and the ids themselves in ``ParsedChunk.keys`` for the logs.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from .okx_jsonl import BOM, NOTHING, BadTrade, OutsideWindow, _decimal_field, load_line, refuse, snippet
from .parsed import ColumnBuilder, ParsedChunk, Reject, complete_lines
from .timecheck import TimeWindow

ARCHIVE_COLUMNS = ("timestamp", "symbol", "side", "size", "price", "tickDirection", "trdMatchID", "grossValue",
                   "homeNotional", "foreignNotional")
_SIDES = {"Buy": True, "Sell": False, "buy": True, "sell": False}


FNV_OFFSET, FNV_PRIME, MASK64 = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def id_key(trade_id: str) -> int:
    """A trade id as a positive int64: its 64-bit FNV-1a hash without the lowest bit (stable across processes;
    the column-wise reader computes the same over the bytes of many ids at once, :func:`id_keys`)."""
    h = FNV_OFFSET
    for b in trade_id.encode():
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h >> 1


def id_keys(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """:func:`id_key` of the ids at ``buf[starts[k]:ends[k]]`` (uint8 array), for all ``k`` at once."""
    h = np.full(len(starts), FNV_OFFSET, dtype=np.uint64)
    lengths = ends - starts
    prime = np.uint64(FNV_PRIME)
    if len(lengths) and int(lengths.min()) == int(lengths.max()):  # ids of one length (UUIDs): bytes as a matrix
        matrix = buf[starts[:, None] + np.arange(int(lengths[0]))].astype(np.uint64)
        for pos in range(matrix.shape[1]):
            h = (h ^ matrix[:, pos]) * prime
        return (h >> np.uint64(1)).astype(np.int64)
    for pos in range(int(lengths.max()) if len(lengths) else 0):
        live = lengths > pos
        idx = np.flatnonzero(live)
        h[idx] = (h[idx] ^ buf[starts[idx] + pos].astype(np.uint64)) * prime  # uint64 arithmetic wraps: mod 2**64
    return (h >> np.uint64(1)).astype(np.int64)


class BybitBuilder(ColumnBuilder):
    """Columns of a chunk, and each accepted trade's id as written."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    def add_trade(self, ts: int, trade_id: str, is_buy: bool, px: tuple[int, int], sz: tuple[int, int]) -> None:
        self.add(ts=ts, trade_id=id_key(trade_id), count=1, is_buy=is_buy, px=px, sz=sz)
        self.keys.append(trade_id)

    def build(self, lines: int) -> ParsedChunk:
        out = super().build(lines)
        out.keys = np.array(self.keys, dtype=object)
        return out


def _side(value: Any) -> bool:
    try:
        return _SIDES[value]
    except (KeyError, TypeError):
        raise BadTrade(f"unknown side {value!r} (expected 'Buy' or 'Sell')") from None


def _trade_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value or len(value) > 64:
        raise BadTrade(f"trade id is not an id: {value!r}")
    return value


def add_item(out: BybitBuilder, item: Any, symbol: str, window: TimeWindow | None) -> None:
    if not isinstance(item, dict):
        raise BadTrade("not a trade object")
    if item.get("s") != symbol:
        raise BadTrade(f"symbol {item.get('s')!r} in the trades of {symbol}")
    ts = item.get("T")
    if isinstance(ts, str) and ts.isdigit():
        ts = int(ts)
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 < ts < 2**63:
        raise BadTrade(f"T is not a time in ms: {item.get('T')!r}")
    trade_id = _trade_id(item.get("i"))
    is_buy = _side(item.get("S"))
    px = _decimal_field(item, "p")
    sz = _decimal_field(item, "v")
    if window is not None and (why := window.reason(ts)) is not None:
        raise BadTrade(why)
    out.add_trade(ts, trade_id, is_buy, px, sz)


def parse_line(out: BybitBuilder, raw: bytes, line_no: int, symbol: str, window: TimeWindow | None) -> None:
    obj = load_line(out, raw, line_no)
    if obj is NOTHING:
        return
    if not isinstance(obj, dict) or not str(obj.get("topic", "")).startswith("publicTrade."):
        out.rejects.append(Reject(line_no, "not a publicTrade push", snippet(raw)))
        return
    items = obj.get("data")
    if not isinstance(items, list):
        out.rejects.append(Reject(line_no, "'data' is not a list", snippet(raw)))
        return
    for k, item in enumerate(items):
        try:
            add_item(out, item, symbol, window)
        except BadTrade as exc:
            out.rejects.append(Reject(line_no, f"data[{k}]: {exc}", snippet(raw)))


def parse_lines(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None = None) -> ParsedChunk:
    """Every push line of a chunk through orjson and the field checks."""
    out = BybitBuilder()
    lines = complete_lines(buf)
    for k, raw in enumerate(lines):
        parse_line(out, raw, first_line_no + k, symbol, window)
    return out.build(len(lines))


def archive_ms(text: str) -> int:
    """An archive's ``timestamp`` (seconds with a fraction) as ms, rounded down: ``1585180700.0647`` -> ``1585180700064``."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BadTrade(f"timestamp is not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise BadTrade(f"timestamp is not a time: {text!r}")
    return int((value * 1000).to_integral_value(rounding="ROUND_FLOOR"))


def parse_csv(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None = None) -> ParsedChunk:
    """Rows of a daily archive (its header line passed over)."""
    out = BybitBuilder()
    lines = complete_lines(buf)
    for k, raw in enumerate(lines):
        line_no = first_line_no + k
        text = (raw[3:] if raw.startswith(BOM) else raw).rstrip(b"\r").decode("utf-8", errors="replace")
        if not text.strip():
            out.rejects.append(Reject(line_no, "empty line", ""))
            continue
        cells = text.split(",")
        if cells[:2] == ["timestamp", "symbol"]:
            continue  # the header line
        try:
            if len(cells) < 7:
                raise BadTrade(f"{len(cells)} columns where the archive has {len(ARCHIVE_COLUMNS)}")
            row = dict(zip(ARCHIVE_COLUMNS, cells))
            if row["symbol"] != symbol:
                raise BadTrade(f"symbol {row['symbol']!r} in the trades of {symbol}")
            ts = archive_ms(row["timestamp"])
            if window is not None and (why := window.reason(ts)) is not None:
                raise OutsideWindow(why, ts)
            out.add_trade(ts, _trade_id(row["trdMatchID"]), _side(row["side"]), _decimal_field(row, "price"),
                          _decimal_field(row, "size"))
        except BadTrade as exc:
            out.rejects.append(refuse(exc, line_no, raw))
    return out.build(len(lines))
