"""The built-in venue formats, registered through the same hook a plugin's format uses (SPEC sections 1, 15).

=============== ======== ======================================== ==========================================
format          exchange files                                    lines
=============== ======== ======================================== ==========================================
okx-jsonl       okx      ``.jsonl``, ``.jsonl.gz``                 exporter lines, REST items, WebSocket pushes
okx-csv         okx      ``.csv``, ``.csv.gz``, ``.zip``           OKX's daily trade archives (header line)
binance-jsonl   binance  ``.jsonl``, ``.jsonl.gz``                 ``aggTrade`` or raw ``trade`` events
binance-csv     binance  ``.csv``, ``.csv.gz``, ``.zip``           ``-aggTrades-`` / ``-trades-`` archives
bybit-jsonl     bybit    ``.jsonl``, ``.jsonl.gz``                 ``publicTrade`` pushes
bybit-csv       bybit    ``.csv``, ``.csv.gz``                     the daily ``{SYMBOL}{date}.csv.gz`` archives
okx-books       okx      ``.jsonl`` (under ``raw/books``)          order-book pushes of one channel
binance-books   binance  ``.jsonl`` (under ``raw/books``)          ``depthUpdate`` events and REST snapshots
bybit-books     bybit    ``.jsonl`` (under ``raw/books``)          ``orderbook.{depth}`` snapshots and deltas
okx-derivs      okx      ``.jsonl`` (under ``raw/derivs``)         ``funding-rate``, ``open-interest``, ``liquidation-orders``
binance-derivs  binance  ``.jsonl`` (under ``raw/derivs``)         ``forceOrder``, ``markPriceUpdate``
bybit-derivs    bybit    ``.jsonl`` (under ``raw/derivs``)         ``allLiquidation``, ``liquidation``, ``tickers``
=============== ======== ======================================== ==========================================

"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable

from .hookspecs import hookimpl
from .sources import columnar
from .sources.formats import VenueFormat

if TYPE_CHECKING:
    from .sources.files import Chunk
    from .sources.parsed import ParsedChunk
    from .sources.timecheck import TimeWindow

# Each venue's reader is imported with its first chunk (the OKX trade reader, the common case, with the module):
# a command reading OKX trades does not load the Binance, Bybit, archive, book and derivs parsers.


def okx_jsonl(chunk: Chunk, inst_id: str, window: TimeWindow) -> ParsedChunk:
    # a chunk not yet numbered (files.LineNumbers) is parsed from line 1, and its rejects moved once it is
    first = chunk.first_line if chunk.first_line is not None else 1
    return columnar.parse_chunk(chunk.buf, first, inst_id, chunk.line_ends, window, chunk.lines)


def okx_archive(chunk: Chunk, inst_id: str, window: TimeWindow) -> ParsedChunk:
    from .sources import okx_csv

    assert chunk.csv_columns is not None
    return okx_csv.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.csv_columns, chunk.line_ends, window)


def binance_jsonl(chunk: Chunk, inst_id: str, window: TimeWindow) -> ParsedChunk:
    from .sources import binance_fast

    return binance_fast.parse_chunk(chunk.buf, chunk.first_line, inst_id, window, chunk.line_ends)


def binance_archive(chunk: Chunk, inst_id: str, window: TimeWindow) -> ParsedChunk:
    from .sources import archive_fast, binance

    return archive_fast.binance_chunk(chunk.buf, chunk.first_line, window, binance.archive_stream(chunk.file.name),
                                      chunk.line_ends)


def bybit_jsonl(chunk: Chunk, inst_id: str, window: TimeWindow) -> ParsedChunk:
    from .sources import bybit_fast

    return bybit_fast.parse_chunk(chunk.buf, chunk.first_line, inst_id, window, chunk.line_ends)


def bybit_archive(chunk: Chunk, inst_id: str, window: TimeWindow) -> ParsedChunk:
    from .sources import archive_fast

    return archive_fast.bybit_chunk(chunk.buf, chunk.first_line, inst_id, window, chunk.line_ends)


def _reader(module: str, name: str) -> Callable[..., Any]:
    """The function ``name`` of ``indicator_core.{module}``, imported when first called (for a format whose
    arguments go to it as they are: a CSV header, a book or derivs chunk)."""
    found: list[Callable[..., Any]] = []

    def read(*args: Any) -> Any:
        if not found:
            found.append(getattr(import_module(f"indicator_core.{module}"), name))
        return found[0](*args)

    read.__name__ = read.__qualname__ = name
    return read


FORMATS = (
    VenueFormat("okx-jsonl", "okx", (".jsonl", ".jsonl.gz"), okx_jsonl, reads_mapped=True,
                description="OKX trades as JSON lines (exporter lines, REST items, WebSocket pushes)"),
    VenueFormat("okx-csv", "okx", (".csv", ".csv.gz", ".zip"), okx_archive,
                header=_reader("sources.okx_csv", "parse_header"),
                description="OKX daily trade archives (CSV with a header line; a .zip holds one)",
                # OKX's own daily archives cut their days at midnight UTC+8
                day_offsets=(("{inst}-trades-{date}.csv", 480), ("{inst}-trades-{date}.zip", 480))),
    VenueFormat("binance-jsonl", "binance", (".jsonl", ".jsonl.gz"), binance_jsonl,
                description="Binance USDⓈ-M aggTrade or raw trade events, bare or combined-stream"),
    VenueFormat("binance-csv", "binance", (".csv", ".csv.gz", ".zip"), binance_archive,
                description="Binance USDⓈ-M -aggTrades- and -trades- daily archives (with or without header)"),
    VenueFormat("bybit-jsonl", "bybit", (".jsonl", ".jsonl.gz"), bybit_jsonl,
                description="Bybit v5 publicTrade pushes"),
    VenueFormat("bybit-csv", "bybit", (".csv", ".csv.gz"), bybit_archive,
                description="Bybit daily trade archives ({SYMBOL}{date}.csv.gz)"),
    # a book format's parse takes the book channel where a trade format's takes the time window
    VenueFormat("okx-books", "okx", (".jsonl",), _reader("streams.okx_books", "parse_chunk"), kind="books",
                description="OKX order-book pushes (books, books5, bbo-tbt, books-l2-tbt, books50-l2-tbt)"),
    VenueFormat("binance-books", "binance", (".jsonl",), _reader("streams.venue_books", "binance_chunk"), kind="books",
                description="Binance USDⓈ-M depthUpdate events with the REST snapshots written among them"),
    VenueFormat("bybit-books", "bybit", (".jsonl",), _reader("streams.venue_books", "bybit_chunk"), kind="books",
                description="Bybit v5 orderbook.{depth} snapshot and delta pushes"),
    # a derivs format's parse takes the file's time window and gives the items of sources.derivs_lines
    VenueFormat("okx-derivs", "okx", (".jsonl",), _reader("sources.derivs_lines", "okx_chunk"), kind="derivs",
                description="OKX funding-rate, open-interest and liquidation-orders pushes"),
    VenueFormat("binance-derivs", "binance", (".jsonl",), _reader("sources.derivs_lines", "binance_chunk"),
                kind="derivs",
                description="Binance USDⓈ-M forceOrder and markPrice events, bare or combined-stream"),
    VenueFormat("bybit-derivs", "bybit", (".jsonl",), _reader("sources.derivs_lines", "bybit_chunk"), kind="derivs",
                description="Bybit v5 allLiquidation, liquidation and tickers pushes"),
)


@hookimpl
def register_venue_formats(register: Callable[[VenueFormat], None]) -> None:
    for fmt in FORMATS:
        register(fmt)
