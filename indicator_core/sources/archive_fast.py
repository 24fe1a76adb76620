"""The fast path for Binance's and Bybit's daily trade archives: plain CSV rows read column-wise.

Every row of an archive has the same columns, so one layout (see
:class:`~indicator_core.sources.columnar.Layout`) describes them all: the
cells between commas, the symbol of a Bybit row part of a literal run.  The
layout is learned from the chunk's first row that is not the header; rows in
it are read by :func:`indicator_core.sources.columnar.parse_with_layout` (the
compiled kernel where built), every other row (the header, a quoted cell, a
bad value, a trade outside the file's day) by the reference reader of
:mod:`.binance` or :mod:`.bybit`, one row at a time, so both paths give the
same result on every input.
"""

from __future__ import annotations

import numpy as np

from . import binance, bybit
from .columnar import Layout, csv_layout, parse_slowly, parse_with_layout
from .parsed import ColumnBuilder, ParsedChunk
from .parsed import line_ends as find_line_ends
from .timecheck import TimeWindow

# how each archive column is read: its trade field and the kind of value (columnar.FIELD_KINDS and the kernel's)
_BINANCE = {
    "agg_trade_id": ("tradeId", "int"), "id": ("tradeId", "int"), "price": ("px", "dec"),
    "quantity": ("sz", "dec"), "qty": ("sz", "dec"), "first_trade_id": ("", "skip_digits"),
    "last_trade_id": ("", "skip_digits"), "quote_qty": ("", "cell"), "transact_time": ("ts", "int"),
    "time": ("ts", "int"), "is_buyer_maker": ("side", "maker"),
}
_BYBIT = {
    "timestamp": ("ts", "seconds"), "side": ("side", "Side"), "size": ("sz", "dec"), "price": ("px", "dec"),
    "trdMatchID": ("tradeId", "id"),
}


def _layout(columns: tuple[str, ...], kinds: dict[str, tuple[str, str]], fixed: dict[str, bytes],
            crlf: bool) -> Layout:
    """A row of ``columns``: a ``fixed`` column is part of the literal run, any other column not in ``kinds``
    an ignored cell."""
    return csv_layout(columns, lambda name: kinds.get(name, ("", "cell")), fixed, crlf)


def _first_row(buf: bytes, line_ends: np.ndarray, is_header) -> bytes | None:
    """The chunk's first row that is not the header line (``None``: no such row in the first two)."""
    start = 0
    for end in line_ends[:2].tolist():
        row = buf[start:end]
        if not is_header(row):
            return row
        start = end + 1
    return None


def binance_chunk(buf: bytes, first_line_no: int, window: TimeWindow | None, stream: binance.Stream,
                  line_ends: np.ndarray | None = None) -> ParsedChunk:
    """The same as :func:`binance.parse_csv`; rows in the archive's plain layout read column-wise."""
    buf = bytes(buf)
    if line_ends is None:
        line_ends = find_line_ends(buf)
    columns = binance.AGG_COLUMNS if stream == "aggTrade" else binance.RAW_COLUMNS

    def slow_row(out: ColumnBuilder, raw: bytes, line_no: int) -> None:
        _extend(out, binance.parse_csv(raw + b"\n", line_no, window, stream))

    first = _first_row(buf, line_ends, lambda row: row.rstrip(b"\r").split(b",") == [c.encode() for c in columns])
    if first is None or first.count(b",") != len(columns) - 1:
        got = parse_slowly(buf, first_line_no, line_ends, slow_row)
    else:
        got = parse_with_layout(buf, first_line_no, line_ends, _layout(columns, _BINANCE, {}, first.endswith(b"\r")),
                                slow_row, window)
    got.id_space = stream
    return got


def bybit_chunk(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None,
                line_ends: np.ndarray | None = None) -> ParsedChunk:
    """The same as :func:`bybit.parse_csv`; rows in the archive's plain layout read column-wise (with or
    without the newer trailing ``RPI`` column, as the chunk's first row has it)."""
    buf = bytes(buf)
    if line_ends is None:
        line_ends = find_line_ends(buf)

    def slow_row(out: ColumnBuilder, raw: bytes, line_no: int) -> None:
        one = bybit.parse_csv(raw + b"\n", line_no, symbol, window)
        if len(one):  # a trade the layout did not take: its id as written goes with it, so the reference
            raise _Slow  # reads the chunk
        out.rejects.extend(one.rejects)

    first = _first_row(buf, line_ends, lambda row: row.startswith(b"timestamp,symbol,"))
    cells = first.count(b",") + 1 if first is not None else 0
    if cells >= len(bybit.ARCHIVE_COLUMNS):
        columns = bybit.ARCHIVE_COLUMNS + tuple(f"extra{k}" for k in range(cells - len(bybit.ARCHIVE_COLUMNS)))
        layout = _layout(columns, _BYBIT, {"symbol": symbol.encode()}, first.endswith(b"\r"))
        try:
            return parse_with_layout(buf, first_line_no, line_ends, layout, slow_row, window)
        except _Slow:
            pass
    return bybit.parse_csv(buf, first_line_no, symbol, window)


class _Slow(Exception):
    """A row the layout did not take holds a trade: the reference reads the chunk."""


def _extend(out: ColumnBuilder, one: ParsedChunk) -> None:
    """Add the trades and rejects of a one-row chunk to ``out``."""
    for name in ("ts", "trade_id", "count", "px_m", "px_s", "sz_m", "sz_s"):
        getattr(out, name).extend(getattr(one, name).tolist())
    out.is_buy.extend(one.is_buy.tolist())
    out.rejects.extend(one.rejects)
