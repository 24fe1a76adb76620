"""Trade sources: OKX JSON lines and OKX's historical CSV, read as one stream per instrument."""

from __future__ import annotations

from . import columnar, okx_csv
from .files import Chunk
from .parsed import ParsedChunk
from .timecheck import DEFAULT_TOLERANCE_MINUTES, TimeWindow


def window(chunk: Chunk, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES, now_ms: int | None = None) -> TimeWindow:
    """The trade times the chunk's file may hold (its day, plausible, not ahead of ``now_ms``)."""
    return TimeWindow.for_day(chunk.file.date, chunk.file.day_offset, tolerance_minutes, now_ms)


def parse(chunk: Chunk, inst_id: str, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES,
          now_ms: int | None = None) -> ParsedChunk:
    """Parse one chunk of complete lines of ``inst_id``'s stream; trades outside its file's window are rejected."""
    w = window(chunk, tolerance_minutes, now_ms)
    if chunk.file.fmt == "csv":
        assert chunk.csv_columns is not None
        return okx_csv.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.csv_columns, chunk.line_ends, w)
    # a chunk not yet numbered (files.LineNumbers) is parsed from line 1, and its rejects moved once it is
    first = chunk.first_line if chunk.first_line is not None else 1
    return columnar.parse_chunk(chunk.buf, first, inst_id, chunk.line_ends, w, chunk.lines)
