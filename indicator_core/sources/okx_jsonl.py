"""OKX trades as JSON lines (SPEC section 1).

A line is either a bare trade object (REST ``/api/v5/market/trades`` items,
WebSocket ``trades`` / ``trades-all`` push items) or a whole WebSocket push
``{"arg": {...}, "data": [trade, ...]}``.  Extra fields are ignored.

This module is the reference parser: every line goes through ``orjson`` and
the field checks, one by one.  The fast path (:mod:`.columnar`) reads the
lines that share one layout column-wise and hands every other line to
:func:`parse_line`, so both always agree.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..numbers import DecimalFormatError, parse_decimal
from .parsed import ColumnBuilder, ParsedChunk, Reject, complete_lines
from .timecheck import TimeWindow

BOM = b"\xef\xbb\xbf"
_SNIPPET = 200


class BadTrade(ValueError):
    """A trade object with a missing or invalid field."""


class OutsideWindow(BadTrade):
    """A trade valid in every field but its time, which is outside its file's window."""

    def __init__(self, reason: str, ts: int) -> None:
        super().__init__(reason)
        self.ts = ts


def refuse(exc: BadTrade, line_no: int, raw: bytes) -> Reject:
    """The reject of a one-trade line (its time kept when that is all that is wrong with it)."""
    return Reject(line_no, str(exc), snippet(raw), exc.ts if isinstance(exc, OutsideWindow) else None)


def snippet(line: bytes) -> str:
    return line[:_SNIPPET].decode("utf-8", errors="replace")


def _decimal_field(obj: dict[str, Any], key: str) -> tuple[int, int]:
    if key not in obj:
        raise BadTrade(f"missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or value is None:
        raise BadTrade(f"{key} is not a number: {value!r}")
    if isinstance(value, (int, float)):
        # A JSON number: its shortest round-trip text, exact for <= 15 significant digits.
        value = repr(value) if isinstance(value, float) else str(value)
        if "e" in value or "E" in value:
            raise BadTrade(f"{key} in exponent notation: {value}")
    if not isinstance(value, str):
        raise BadTrade(f"{key} is not a decimal string: {value!r}")
    if value.startswith("-"):
        raise BadTrade(f"{key} is negative: {value}")
    try:
        mantissa, scale = parse_decimal(value)
    except DecimalFormatError:
        raise BadTrade(f"{key} is not a decimal number: {value!r}") from None
    if mantissa == 0:
        raise BadTrade(f"{key} is zero")
    return mantissa, scale


def _int_field(obj: dict[str, Any], key: str, default: int | None = None) -> int:
    if key not in obj:
        if default is not None:
            return default
        raise BadTrade(f"missing field {key!r}")
    value = obj[key]
    if isinstance(value, bool):
        raise BadTrade(f"{key} is not an integer: {value!r}")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        out = int(value)
    else:
        raise BadTrade(f"{key} is not an integer: {value!r}")
    if out <= 0 or out >= 2**63:
        raise BadTrade(f"{key} out of range: {value!r}")
    return out


def add_trade(out: ColumnBuilder, obj: Any, inst_id: str, window: TimeWindow | None = None) -> None:
    """Validate one trade object and append it to ``out``; raises :class:`BadTrade`.

    With a ``window``, a ``ts`` outside it (see :mod:`.timecheck`) is refused too.
    """
    if not isinstance(obj, dict):
        raise BadTrade("not a trade object")
    got = obj.get("instId")
    if got is None:
        raise BadTrade("missing field 'instId'")
    if got != inst_id:
        raise BadTrade(f"instId {got!r} in the trades of {inst_id}")
    side = obj.get("side")
    if side == "buy":
        is_buy = True
    elif side == "sell":
        is_buy = False
    elif side is None:
        raise BadTrade("missing field 'side'")
    else:
        raise BadTrade(f"unknown side {side!r} (expected 'buy' or 'sell')")
    ts = _int_field(obj, "ts")
    trade_id = _int_field(obj, "tradeId")
    count = _int_field(obj, "count", default=1)
    px = _decimal_field(obj, "px")
    sz = _decimal_field(obj, "sz")
    if window is not None:
        why = window.reason(ts)
        if why is not None:
            raise OutsideWindow(why, ts)
    out.add(ts=ts, trade_id=trade_id, count=count, is_buy=is_buy, px=px, sz=sz)


NOTHING = object()  # what load_line gives for a line that became a reject


def load_line(out: ColumnBuilder, raw: bytes, line_no: int) -> Any:
    """One line (without its ``\\n``) as JSON, a BOM and a ``\\r`` dropped; an empty or invalid line becomes
    a reject and gives :data:`NOTHING` (the JSON lines of every venue start here)."""
    line = raw[3:] if raw.startswith(BOM) else raw
    line = line[:-1] if line.endswith(b"\r") else line
    if not line.strip():
        out.rejects.append(Reject(line_no, "empty line", ""))
        return NOTHING
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        out.rejects.append(Reject(line_no, f"invalid JSON: {exc}", snippet(raw)))
        return NOTHING


def parse_line(out: ColumnBuilder, raw: bytes, line_no: int, inst_id: str, window: TimeWindow | None = None) -> None:
    """Parse one line (without its ``\\n``); a bad line or item becomes a reject."""
    obj = load_line(out, raw, line_no)
    if obj is NOTHING:
        return
    if isinstance(obj, dict) and "data" in obj:
        items = obj["data"]
        if not isinstance(items, list):
            out.rejects.append(Reject(line_no, "'data' is not a list", snippet(raw)))
            return
        for k, item in enumerate(items):
            try:
                add_trade(out, item, inst_id, window)
            except BadTrade as exc:
                out.rejects.append(Reject(line_no, f"data[{k}]: {exc}", snippet(raw)))
        return
    try:
        add_trade(out, obj, inst_id, window)
    except BadTrade as exc:
        out.rejects.append(refuse(exc, line_no, raw))


def parse_lines(buf: bytes, first_line_no: int, inst_id: str, window: TimeWindow | None = None) -> ParsedChunk:
    """The reference: every line through orjson and the field checks, one by one."""
    out = ColumnBuilder()
    lines = complete_lines(buf)
    for k, raw in enumerate(lines):
        parse_line(out, raw, first_line_no + k, inst_id, window)
    return out.build(len(lines))
