"""Trade sources: OKX JSON lines and OKX's historical CSV, read as one stream per instrument."""

from __future__ import annotations

from . import okx_csv, okx_jsonl
from .files import Chunk
from .parsed import ParsedChunk

# Below this much to read, the pure-Python parser is used: it gives the same
# result (tests/test_jsonl_kernel.py) without the fixed cost of importing
# numba and loading the compiled kernel, which dominates an incremental run.
COMPILED_FROM_BYTES = 32 * 1024 * 1024


def _compiled_parser():
    try:
        from .jsonl_kernel import AVAILABLE, parse_chunk_fast
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None
    return parse_chunk_fast if AVAILABLE else None


def parse(chunk: Chunk, inst_id: str, compiled: bool = True) -> ParsedChunk:
    """Parse one chunk of complete lines of ``inst_id``'s stream."""
    if chunk.file.fmt == "csv":
        assert chunk.csv_columns is not None
        return okx_csv.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.csv_columns)
    fast = _compiled_parser() if compiled else None
    if fast is not None:
        return fast(chunk.buf, chunk.first_line, inst_id, chunk.lines)
    return okx_jsonl.parse_chunk(chunk.buf, chunk.first_line, inst_id)
