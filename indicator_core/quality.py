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

_STREAMS = {"gap": "gaps", "late": "late", "reject": "rejects"}


class QualityLog(Indicator):
    name = "quality"
    version = "1"

    def outputs(self) -> list[str]:
        return list(_STREAMS.values())

    def on_quality(self, event: dict[str, Any], emit: Emit) -> None:
        record = {k: v for k, v in event.items() if k != "event"}
        emit(_STREAMS[event["event"]], record)
