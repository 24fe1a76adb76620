"""OKX trades as JSON lines (SPEC section 1).

A line is either a bare trade object (REST ``/api/v5/market/trades`` items,
WebSocket ``trades`` / ``trades-all`` push items) or a whole WebSocket push
``{"arg": {...}, "data": [trade, ...]}``.  Extra fields are ignored.

This module is the reference parser: every line goes through ``orjson``.  The
optional compiled fast path (:mod:`indicator_core.sources.fastjsonl`) handles
the common canonical lines and hands everything else back to this parser, so
both always agree.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

from ..numbers import DecimalFormatError, parse_decimal
from .parsed import ColumnBuilder, ParsedChunk, Reject

BOM = b"\xef\xbb\xbf"
_SNIPPET = 200


class BadTrade(ValueError):
    """A trade object with a missing or invalid field."""


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


def add_trade(out: ColumnBuilder, obj: Any, inst_id: str) -> None:
    """Validate one trade object and append it to ``out``; raises :class:`BadTrade`."""
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
    out.add(
        ts=_int_field(obj, "ts"),
        trade_id=_int_field(obj, "tradeId"),
        count=_int_field(obj, "count", default=1),
        is_buy=is_buy,
        px=_decimal_field(obj, "px"),
        sz=_decimal_field(obj, "sz"),
    )


def parse_line(out: ColumnBuilder, raw: bytes, line_no: int, inst_id: str) -> None:
    """Parse one line (without its ``\\n``); a bad line or item becomes a reject."""
    line = raw
    if line.startswith(BOM):
        line = line[3:]
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip():
        out.rejects.append(Reject(line_no, "empty line", ""))
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        out.rejects.append(Reject(line_no, f"invalid JSON: {exc}", snippet(raw)))
        return
    if isinstance(obj, dict) and "data" in obj:
        items = obj["data"]
        if not isinstance(items, list):
            out.rejects.append(Reject(line_no, "'data' is not a list", snippet(raw)))
            return
        for k, item in enumerate(items):
            try:
                add_trade(out, item, inst_id)
            except BadTrade as exc:
                out.rejects.append(Reject(line_no, f"data[{k}]: {exc}", snippet(raw)))
        return
    try:
        add_trade(out, obj, inst_id)
    except BadTrade as exc:
        out.rejects.append(Reject(line_no, str(exc), snippet(raw)))


_CANONICAL: dict[str, re.Pattern[bytes]] = {}


def _canonical(inst_id: str) -> re.Pattern[bytes]:
    """The exporter's exact line layout for ``inst_id``, one match per line."""
    rx = _CANONICAL.get(inst_id)
    if rx is None:
        rx = _CANONICAL[inst_id] = re.compile(
            rb'^\{"instId":"' + re.escape(inst_id.encode()) + rb'","tradeId":"([0-9]{1,18})",'
            rb'"px":"([0-9]{0,18})(?:\.([0-9]{1,18}))?","sz":"([0-9]{0,18})(?:\.([0-9]{1,18}))?",'
            rb'"side":"(buy|sell)","ts":"([0-9]{1,18})"\}\n',
            re.MULTILINE,
        )
    return rx


def _decimal_column(whole: list[bytes], frac: list[bytes]) -> tuple[np.ndarray, np.ndarray] | None:
    w = np.array(whole, dtype="S18")
    f = np.array(frac, dtype="S18")
    scale = np.char.str_len(f).astype(np.int64)
    digits = np.char.str_len(w) + scale
    if not len(w) or digits.min() == 0 or digits.max() > 18:
        return None
    mantissa = np.char.add(w, f).astype(np.int64)
    if (mantissa == 0).any():
        return None
    return mantissa, scale


def _parse_canonical(buf: bytes, n_lines: int, inst_id: str) -> ParsedChunk | None:
    """All lines in the exporter's layout: parse them column-wise; ``None`` if any line is not."""
    rows = _canonical(inst_id).findall(buf)
    if len(rows) != n_lines or not rows:
        return None
    tid, pw, pf, sw, sf, side, ts = zip(*rows)
    px = _decimal_column(pw, pf)
    sz = _decimal_column(sw, sf)
    if px is None or sz is None:
        return None
    ts_col = np.array(ts, dtype="S18").astype(np.int64)
    tid_col = np.array(tid, dtype="S18").astype(np.int64)
    if ts_col.min() <= 0 or tid_col.min() <= 0:
        return None
    return ParsedChunk(
        ts=ts_col, trade_id=tid_col, count=np.ones(n_lines, dtype=np.int64),
        is_buy=np.array(side, dtype="S4") == b"buy", px_m=px[0], px_s=px[1], sz_m=sz[0], sz_s=sz[1],
        rejects=[], lines=n_lines,
    )


def parse_chunk(buf: bytes, first_line_no: int, inst_id: str) -> ParsedChunk:
    """Parse ``buf``, a run of complete ``\\n``-terminated lines starting at ``first_line_no``.

    A chunk whose lines are all in the exporter's own layout is parsed
    column-wise by one regular expression; any other chunk line by line.
    """
    fast = _parse_canonical(buf, buf.count(b"\n"), inst_id) if buf.endswith(b"\n") else None
    return fast if fast is not None else parse_lines(buf, first_line_no, inst_id)


def parse_lines(buf: bytes, first_line_no: int, inst_id: str) -> ParsedChunk:
    """The reference: every line through orjson and the field checks, one by one."""
    out = ColumnBuilder()
    lines = buf.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for k, raw in enumerate(lines):
        parse_line(out, raw, first_line_no + k, inst_id)
    return out.build(len(lines))
