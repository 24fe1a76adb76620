"""OKX's historical trade CSV downloads (daily archive files).

Columns (by header name, any order): ``instrument_name``, ``trade_id``,
``side``, ``price``, ``size``, ``created_time`` (epoch ms).  The v5 names
``instId``, ``tradeId``, ``px``, ``sz``, ``ts`` are accepted too.  Sizes are
contracts for SWAP/FUTURES, as in the JSON feeds.  Archive files split days at
UTC+8; that does not matter here, since the stream is continuous.
"""

from __future__ import annotations

from ..errors import IndicatorError
from .okx_jsonl import BOM, BadTrade, add_trade, snippet
from .parsed import ColumnBuilder, ParsedChunk, Reject

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


def parse_chunk(buf: bytes, first_line_no: int, inst_id: str, columns: list[str | None]) -> ParsedChunk:
    out = ColumnBuilder()
    lines = buf.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    width = len(columns)
    for k, raw in enumerate(lines):
        line_no = first_line_no + k
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if not line.strip():
            out.rejects.append(Reject(line_no, "empty line", ""))
            continue
        cells = line.decode("utf-8", "replace").split(",")
        if len(cells) != width:
            out.rejects.append(Reject(line_no, f"{len(cells)} columns, the header has {width}", snippet(raw)))
            continue
        obj = {f: c.strip().strip('"') for f, c in zip(columns, cells) if f is not None}
        # The archive writes sizes like "38.0": a plain decimal, parsed exactly like the JSON feeds.
        try:
            add_trade(out, obj, inst_id)
        except BadTrade as exc:
            out.rejects.append(Reject(line_no, str(exc), snippet(raw)))
    return out.build(len(lines))
