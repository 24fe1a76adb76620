"""The built-in data-quality log, an indicator that is always enabled.

It writes ``derived/quality/{exchange}/{market}/{INST_ID}/``:
``gaps.jsonl`` (SPEC section 7), ``late.jsonl`` (late trades, with the bar they
belonged to and the bar that was open) and ``rejects.jsonl`` (skipped lines
with their file, line number and reason).  Duplicates are only counted; the
counts of everything are in the stream state that ``indicators status`` shows.
"""

from __future__ import annotations

from typing import Any

from .indicator import Emit, Indicator
from .timeutil import iso_minute

_STREAMS = {"gap": "gaps", "late": "late", "reject": "rejects"}


class QualityLog(Indicator):
    name = "quality"
    version = "1"

    def outputs(self) -> list[str]:
        return list(_STREAMS.values())

    def on_quality(self, event: dict[str, Any], emit: Emit) -> None:
        record = {k: v for k, v in event.items() if k != "event"}
        emit(_STREAMS[event["event"]], record)

    def on_quality_events(self, events: Any, emit: Emit) -> None:
        emit(_STREAMS[events.event], events.json_lines())  # the lines of on_quality's records, from the columns


class BookQualityLog(Indicator):
    """The book stream's quality log (SPEC section 10), in the same folder as the trades' one.

    ``books.jsonl``: every invalidation (``seq_gap``, ``checksum``, ``crossed``)
    and recovery (``resync``) of the book; ``books_rejects.jsonl``: the book
    lines that could not be read, with file, line number and reason, as in
    ``rejects.jsonl``.  (The two streams commit on their own, and an output
    file belongs to one committer, so book rejects have their own file.)
    """

    name = "quality"
    version = "1"
    consumes = "books"

    def outputs(self) -> list[str]:
        return ["books", "books_rejects"]

    def on_quality(self, event: dict[str, Any], emit: Emit) -> None:
        if event["event"] == "reject":
            emit("books_rejects", {k: v for k, v in event.items() if k != "event"})
        else:
            emit("books", event)


class DerivsQualityLog(Indicator):
    """The derivatives stream's quality log (SPEC section 17), in the same folder as the trades' one.

    ``derivs.jsonl``: every late push (for a minute already closed, with its
    file, line and channel); ``derivs_rejects.jsonl``: the lines that could not
    be read, as ``rejects.jsonl``; ``derivs_routed.jsonl``: where the instrument
    is named in ``[derivs] liquidations_from``, the other instruments'
    liquidations its files held, as it closes each minute.  Duplicates and pushes of other instruments
    are counted in the stream state (``indicators status``).
    """

    name = "quality"
    version = "1"
    consumes = "derivs"

    def outputs(self) -> list[str]:
        return ["derivs", "derivs_rejects", "derivs_routed"]

    def on_quality(self, event: dict[str, Any], emit: Emit) -> None:
        if event["event"] == "reject":
            emit("derivs_rejects", {k: v for k, v in event.items() if k != "event"})
        else:
            emit("derivs", event)

    def on_derivs_minutes(self, minutes: Any, emit: Emit) -> None:
        # where the instrument is named in [derivs] liquidations_from: the other instruments' liquidations its
        # files held, for them to read (SPEC 17: a feed per instrument type recorded under one instrument)
        for i, foreign in sorted(minutes.foreign.items()):
            stamp = iso_minute(minutes.first + i)
            for ts, inst_id, side, px, sz in foreign:
                emit("derivs_routed", {"timestamp_utc": stamp, "ts": ts, "inst_id": inst_id,
                                       "side": side, "px": px, "sz": sz})
