"""Trade sources: OKX JSON lines and OKX's historical CSV, read as one stream per instrument."""

from __future__ import annotations

from . import okx_csv, okx_jsonl
from .files import Chunk
from .parsed import ParsedChunk

# Below this much to read, the pure-Python parser is used: it gives the same
# result (tests/test_jsonl_kernel.py) without the fixed cost of importing
# numba and loading the compiled kernel, which dominates an incremental run.
COMPILED_FROM_BYTES = 32 * 1024 * 1024


_warm = False


def _compiled_parser():
    global _warm
    try:
        from .jsonl_kernel import AVAILABLE, parse_chunk_fast
    except ImportError:  # pragma: no cover - numba is a declared dependency
        return None
    _warm = AVAILABLE
    return parse_chunk_fast if AVAILABLE else None


def warm_compiled() -> None:
    """Load the compiled parser now (a long-running follower pays its start-up once)."""
    if _compiled_parser() is not None:
        from .jsonl_kernel import warm_up

        warm_up()


def use_compiled(todo_bytes: int) -> bool:
    """Whether reading ``todo_bytes`` should go through the compiled parser."""
    return _warm or todo_bytes >= COMPILED_FROM_BYTES


def parse(chunk: Chunk, inst_id: str, compiled: bool = True) -> ParsedChunk:
    """Parse one chunk of complete lines of ``inst_id``'s stream."""
    if chunk.file.fmt == "csv":
        assert chunk.csv_columns is not None
        return okx_csv.parse_chunk(chunk.buf, chunk.first_line, inst_id, chunk.csv_columns)
    fast = _compiled_parser() if compiled else None
    if fast is not None:
        return fast(chunk.buf, chunk.first_line, inst_id, chunk.lines)
    return okx_jsonl.parse_chunk(chunk.buf, chunk.first_line, inst_id)
