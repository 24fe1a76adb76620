"""Trade sources: the venues' files (:mod:`.formats`), read as one stream per instrument."""

from __future__ import annotations

from .files import Chunk
from .parsed import ParsedChunk
from .timecheck import DEFAULT_TOLERANCE_MINUTES, TimeWindow


def window(chunk: Chunk, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES, now_ms: int | None = None) -> TimeWindow:
    """The trade times the chunk's file may hold (its day, plausible, not ahead of ``now_ms``)."""
    return TimeWindow.for_day(chunk.file.date, chunk.file.day_offset, tolerance_minutes, now_ms)


def parse(chunk: Chunk, inst_id: str, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES,
          now_ms: int | None = None) -> ParsedChunk:
    """Parse one chunk of complete lines of ``inst_id``'s stream; trades outside its file's window are rejected."""
    return chunk.file.fmt.parse(chunk, inst_id, window(chunk, tolerance_minutes, now_ms))
