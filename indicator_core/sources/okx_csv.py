"""OKX's historical trade CSV downloads (daily archive files).

Columns (by header name, any order): ``instrument_name``, ``trade_id``,
``side``, ``price``, ``size``, ``created_time`` (epoch ms).  The v5 names
``instId``, ``tradeId``, ``px``, ``sz``, ``ts`` are accepted too.  Sizes are
contracts for SWAP/FUTURES, as in the JSON feeds.  Archive files split days at
UTC+8: their trades are checked against that day (see :mod:`.timecheck`).
"""

from __future__ import annotations

import numpy as np

from ..errors import IndicatorError
from .columnar import FIELD_KINDS, Layout, csv_layout, parse_slowly, parse_with_layout
from .okx_jsonl import BOM, BadTrade, add_trade, refuse, snippet
from .parsed import ColumnBuilder, ParsedChunk, Reject
from .timecheck import TimeWindow
from .parsed import line_ends as find_line_ends

_ALIASES = {
    "instrument_name": "instId", "instid": "instId", "inst_id": "instId",
    "trade_id": "tradeId", "tradeid": "tradeId",
    "side": "side",
    "price": "px", "px": "px",
    "size": "sz", "sz": "sz", "qty": "sz",
    "created_time": "ts", "ts": "ts", "timestamp": "ts",
}
REQUIRED = ("instId", "tradeId", "side", "px", "sz", "ts")


def parse_header(line: bytes, path: str) -> list[str | None]:
    """Map each CSV column to its v5 trade field (``None`` for columns not used)."""
    if line.startswith(BOM):
        line = line[3:]
    names = [c.strip().strip('"').lower() for c in line.decode("utf-8", "replace").rstrip("\r\n").split(",")]
    fields = [_ALIASES.get(n) for n in names]
    missing = [f for f in REQUIRED if f not in fields]
    if missing:
        raise IndicatorError(
            f"{path}: CSV header {line[:200]!r} lacks the columns for {', '.join(missing)}; "
            "expected instrument_name,trade_id,side,price,size,created_time"
        )
    return fields


def parse_row(out: ColumnBuilder, raw: bytes, line_no: int, inst_id: str, columns: list[str | None],
              window: TimeWindow | None = None) -> None:
    """The reference: one row (without its ``\\n``) through the same field checks as a JSON trade."""
    line = raw[:-1] if raw.endswith(b"\r") else raw
    if not line.strip():
        out.rejects.append(Reject(line_no, "empty line", ""))
        return
    cells = line.decode("utf-8", "replace").split(",")
    if len(cells) != len(columns):
        out.rejects.append(Reject(line_no, f"{len(cells)} columns, the header has {len(columns)}", snippet(raw)))
        return
    obj = {f: c.strip().strip('"') for f, c in zip(columns, cells) if f is not None}
    # The archive writes sizes like "38.0": a plain decimal, parsed exactly like the JSON feeds.
    try:
        add_trade(out, obj, inst_id, window)
    except BadTrade as exc:
        out.rejects.append(refuse(exc, line_no, raw))


def row_layout(columns: list[str | None], inst_id: str, crlf: bool) -> Layout | None:
    """The layout of a plain row (no quotes, no spaces) under this header, for the column-wise path."""
    used = [c for c in columns if c is not None]
    if len(used) != len(set(used)):
        return None  # a field named twice: the reference decides which cell counts
    return csv_layout([c or "" for c in columns], lambda c: (c, FIELD_KINDS.get(c, "skip")),
                      {"instId": inst_id.encode()}, crlf)


def parse_chunk(buf: bytes, first_line_no: int, inst_id: str, columns: list[str | None],
                line_ends: np.ndarray | None = None, window: TimeWindow | None = None) -> ParsedChunk:
    """Parse ``buf``, complete rows from line ``first_line_no`` on (the header is not in it)."""
    if line_ends is None:
        line_ends = find_line_ends(buf)

    def slow_row(out: ColumnBuilder, raw: bytes, line_no: int) -> None:
        parse_row(out, raw, line_no, inst_id, columns, window)

    crlf = len(line_ends) > 0 and line_ends[0] > 0 and buf[int(line_ends[0]) - 1] == 0x0D
    layout = row_layout(columns, inst_id, crlf)
    if layout is None:
        return parse_slowly(buf, first_line_no, line_ends, slow_row)
    return parse_with_layout(buf, first_line_no, line_ends, layout, slow_row, window)
