"""Trade sources: OKX JSON lines and OKX's historical CSV, read as one stream per instrument."""

from __future__ import annotations

from . import columnar, okx_csv
from .files import Chunk
from .parsed import ParsedChunk


def parse(chunk: Chunk, inst_id: str) -> ParsedChunk:
    """Parse one chunk of complete lines of ``inst_id``'s stream."""
    if chunk.file.fmt == "csv":
        assert chunk.csv_columns is not None
        return okx_csv.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.csv_columns, chunk.line_ends)
    return columnar.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.line_ends)
