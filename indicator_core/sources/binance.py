"""Binance USDⓈ-M trades (SPEC section 15): stream lines and daily archive CSVs.

Lines as received from the ``aggTrade`` stream or the raw ``trade`` stream,
bare or wrapped by a combined stream (``{"stream": ..., "data": {...}}``),
and rows of the daily archives ``{SYMBOL}-aggTrades-{date}.csv`` and
``{SYMBOL}-trades-{date}.csv`` (with or without their header line):

========== =============== ================= ==================================
field      ``aggTrade``    ``trade``         archives
========== =============== ================= ==================================
trade_id   ``a``           ``t``             ``agg_trade_id`` / ``id``
ts         ``T``           ``T``             ``transact_time`` / ``time``
px         ``p``           ``p``             ``price``
sz (base)  ``q``           ``q``             ``quantity`` / ``qty``
side       ``m`` true: the buyer was the maker, so the taker sold
========== =============== ================= ==================================

A raw ``trade`` whose ``X`` is not ``MARKET`` (an insurance-fund or ADL fill)
is not a trade of the tape: it is skipped and counted (``ParsedChunk.skipped``).
Sizes are base quantities: the instrument's contract value is 1 (the venue
table in :mod:`indicator_core.instruments`).
"""

from __future__ import annotations

from typing import Any, Literal


from .okx_jsonl import BOM, NOTHING, BadTrade, OutsideWindow, _decimal_field, _int_field, load_line, refuse
from .parsed import ColumnBuilder, ParsedChunk, Reject, complete_lines
from .timecheck import TimeWindow

Stream = Literal["aggTrade", "trade"]

AGG_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker")
RAW_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")


class BinanceBuilder(ColumnBuilder):
    """Columns of a chunk, the raw trades skipped for their ``X``, and which stream its events are."""

    __slots__ = ("skipped", "stream")

    def __init__(self, stream: Stream | None = None) -> None:
        super().__init__()
        self.skipped = 0
        self.stream = stream  # None: learned from the chunk's first trade event

    def build(self, lines: int) -> ParsedChunk:
        out = super().build(lines)
        out.skipped = self.skipped
        out.id_space = self.stream
        return out


def _maker_flag(value: Any) -> bool:
    if value is True or value in ("true", "True"):
        return True
    if value is False or value in ("false", "False"):
        return False
    raise BadTrade(f"m (is_buyer_maker) is not true or false: {value!r}")


def add_event(out: BinanceBuilder, obj: Any, symbol: str, window: TimeWindow | None) -> None:
    """One ``aggTrade`` or ``trade`` event object; raises :class:`BadTrade`."""
    if not isinstance(obj, dict):
        raise BadTrade("not a trade event")
    event = obj.get("e")
    if out.stream is None and event in ("aggTrade", "trade"):
        out.stream = event
    stream = out.stream
    if event != stream:
        if event in ("aggTrade", "trade"):
            raise BadTrade(f"a {event!r} event in a stream of {stream!r} events: one instrument's trades are either "
                           "aggregated trades or raw trades, never both")
        raise BadTrade(f"not a trade event (e = {event!r})")
    got = obj.get("s")
    if got != symbol:
        raise BadTrade(f"symbol {got!r} in the trades of {symbol}")
    if stream == "trade":
        kind = obj.get("X", "MARKET")
        if kind != "MARKET":
            out.skipped += 1
            return
        trade_id = _int_field(obj, "t")
    else:
        trade_id = _int_field(obj, "a")
    ts = _int_field(obj, "T")
    px = _decimal_field(obj, "p")
    sz = _decimal_field(obj, "q")
    taker_sold = _maker_flag(obj.get("m"))
    if window is not None:
        why = window.reason(ts)
        if why is not None:
            raise OutsideWindow(why, ts)
    out.add(ts=ts, trade_id=trade_id, count=1, is_buy=not taker_sold, px=px, sz=sz)


def parse_line(out: BinanceBuilder, raw: bytes, line_no: int, symbol: str, window: TimeWindow | None) -> None:
    obj = load_line(out, raw, line_no)
    if obj is NOTHING:
        return
    if isinstance(obj, dict) and "stream" in obj and "data" in obj:
        obj = obj["data"]  # a combined stream's wrapper
    try:
        add_event(out, obj, symbol, window)
    except BadTrade as exc:
        out.rejects.append(refuse(exc, line_no, raw))


def parse_lines(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None = None,
                stream: Stream | None = None) -> ParsedChunk:
    """Every line of a chunk of complete stream lines through orjson and the field checks.

    The chunk's stream (``aggTrade`` or ``trade``) is ``stream``, else the one of its first trade event;
    an event of the other stream is a reject (and a chunk of the other stream than the instrument's
    earlier ones is refused by the trade stream: ``ParsedChunk.id_space``)."""
    out = BinanceBuilder(stream)
    lines = complete_lines(buf)
    for k, raw in enumerate(lines):
        parse_line(out, raw, first_line_no + k, symbol, window)
    return out.build(len(lines))


def archive_stream(name: str) -> Stream:
    """Which stream a daily archive's file name holds (``-aggTrades-`` or ``-trades-``)."""
    return "aggTrade" if "-aggTrades-" in name else "trade"


def parse_csv(buf: bytes, first_line_no: int, window: TimeWindow | None, stream: Stream) -> ParsedChunk:
    """Rows of a daily archive, in its column order; a header line (the column names) is passed over."""
    out = BinanceBuilder(stream)
    columns = AGG_COLUMNS if stream == "aggTrade" else RAW_COLUMNS
    lines = complete_lines(buf)
    for k, raw in enumerate(lines):
        line_no = first_line_no + k
        line = raw[3:] if raw.startswith(BOM) else raw
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        if not text.strip():
            out.rejects.append(Reject(line_no, "empty line", ""))
            continue
        cells = text.split(",")
        if [c.strip() for c in cells] == list(columns):
            continue  # the header line (archives since 2022 have one)
        try:
            if len(cells) != len(columns):
                raise BadTrade(f"{len(cells)} columns where the archive has {len(columns)} ({', '.join(columns)})")
            row = dict(zip(columns, cells))
            trade_id = _int_field(row, columns[0])
            ts = _int_field(row, "transact_time" if stream == "aggTrade" else "time")
            px = _decimal_field(row, "price")
            sz = _decimal_field(row, "quantity" if stream == "aggTrade" else "qty")
            taker_sold = _maker_flag(row["is_buyer_maker"])
            if window is not None:
                why = window.reason(ts)
                if why is not None:
                    raise OutsideWindow(why, ts)
            out.add(ts=ts, trade_id=trade_id, count=1, is_buy=not taker_sold, px=px, sz=sz)
        except BadTrade as exc:
            out.rejects.append(refuse(exc, line_no, raw))
    return out.build(len(lines))
