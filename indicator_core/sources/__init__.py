"""Trade sources: OKX JSON lines and OKX's historical CSV, read as one stream per instrument."""

from __future__ import annotations

from . import okx_csv, okx_jsonl
from .files import Chunk
from .parsed import ParsedChunk

from . import jsonl_kernel

# the compiled fast path when numba is installed; it agrees with the reference parser on every line
_parse_jsonl = jsonl_kernel.parse_chunk_fast if jsonl_kernel.AVAILABLE else okx_jsonl.parse_chunk


def parse(chunk: Chunk, inst_id: str) -> ParsedChunk:
    """Parse one chunk of complete lines of ``inst_id``'s stream."""
    if chunk.file.fmt == "csv":
        assert chunk.csv_columns is not None
        return okx_csv.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.csv_columns)
    if _parse_jsonl is jsonl_kernel.parse_chunk_fast:
        return _parse_jsonl(chunk.buf, chunk.first_line, inst_id, chunk.lines)
    return _parse_jsonl(chunk.buf, chunk.first_line, inst_id)
