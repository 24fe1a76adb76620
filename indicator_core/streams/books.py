"""The ``books`` input kind (SPEC section 10): raw files under ``raw/books``, read by the venues' book formats.

Raw files: ``{vault}/raw/books/{exchange}/{market}/{INST_ID}/books_{date}.jsonl``,
one WebSocket push per line, read with the same files, cursors and commits as
trades.  The exchange folder chooses the format (OKX's: :mod:`.okx_books`), the
stream is :class:`.book_stream.BookStream`, its event :class:`.book_stream.BookMinute`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import StreamKind

if TYPE_CHECKING:  # (the stream loads when a vault has books, not with every command)
    from .book_stream import BookStream

# the counters `indicators status` shows of a book stream, in its JSON's order
STATUS_COUNTERS = ("pushes", "snapshots", "duplicates", "heartbeats", "seq_gaps", "checksum_errors", "crossed",
                   "resyncs", "other_channel", "late", "rejects", "minutes")


class Books(StreamKind):
    """The ``books`` kind of input (see :mod:`indicator_core.streams`)."""

    name = "books"

    @property
    def counters(self) -> tuple[str, ...]:  # type: ignore[override]
        from .book_stream import COUNTERS

        return COUNTERS

    parse_in_threads = False  # orjson and Python per line: a worker thread would only wait for the GIL

    def root(self, cfg) -> str:
        return cfg.books.root

    def patterns(self, cfg) -> list[str]:
        return cfg.books.patterns

    def channel(self, cfg, inst_id: str) -> str:
        return cfg.books.channels.get(inst_id, cfg.books.channel)

    def new_stream(self, inst, cfg) -> BookStream:
        from .book_stream import BookStream

        return BookStream(self.channel(cfg, inst.inst_id))

    def parser(self, cfg, inst_id: str, tolerance_minutes: int = 0, now_ms: int = 0):
        channel = self.channel(cfg, inst_id)
        return lambda chunk: chunk.file.fmt.parse(chunk, inst_id, channel)

    def quality_log(self, inst):
        from ..quality import BookQualityLog

        return BookQualityLog(inst, BookQualityLog.Params())

    venue_formats = True  # the exchange folder chooses the format (today OKX's pushes: builtin_formats)
    label_suffix = " books"
    status_title = "books"
    state_suffix = ".books"  # the book stream's quality state: {INST_ID}.books.state.json
    status_columns = (("last minute", "last_minute_utc", "<21"), ("pushes", "pushes", ">10"), ("dup", "duplicates", ">6"),
                      ("seqgap", "seq_gaps", ">6"), ("cksum", "checksum_errors", ">5"), ("cross", "crossed", ">5"),
                      ("rejects", "rejects", ">7"), ("valid", "valid", "<5"))

    def summary_line(self, c):
        return (f"{c['pushes']} pushes ({c['lines']} lines), {c['minutes']} minutes closed, {c['duplicates']} "
                f"duplicates, {c['seq_gaps']} sequence gaps, {c['checksum_errors']} checksum errors, {c['crossed']} "
                f"crossed, {c['rejects']} rejects")

    def summary_totals(self, total):
        books = total("pushes")
        return f"{books} book pushes, {total('minutes')} book minutes written, " if books else ""

    def status_fields(self, state, cfg, vault, key):
        stream = state.get("stream") or {}
        counters = stream.get("counters", {})
        return {
            "last_minute_utc": state.get("last_bar_utc"),
            "channel": stream.get("channel"),
            "valid": stream.get("book") is not None and stream.get("invalid") is None,
            **{k: int(counters.get(k, 0)) for k in STATUS_COUNTERS},
        }

    def fingerprint_extra(self, cfg, inst_id: str) -> dict[str, Any]:
        return {"channel": self.channel(cfg, inst_id)}


BOOKS = Books()
