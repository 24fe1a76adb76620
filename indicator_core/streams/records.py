"""The ``records`` input kind (SPEC section 12): other indicators' committed records, minute by minute.

Its "files" are the outputs of other indicators, read only up to the length
their state files have committed; its reader and state machine are
:mod:`indicator_core.runtime.records` (``InputReader``: a producer's committed
records from a byte offset on; ``RecordConsumer``: the watermark every input
has passed, the minutes up to it delivered in order); its event is one minute's
records of every input, ``Indicator.on_records(minute, records, emit)``.  The
runtime runs it for an instrument after the instrument's file kinds, so a
record consumer sees what its producers just committed.
"""

from __future__ import annotations

from typing import Any

from .base import StreamKind


class Records(StreamKind):
    name = "records"
    counters = ("minutes",)
    reads_files = False  # its input is other indicators' committed outputs
    reads_records = True
    label_suffix = " records"
    status_title = "records"
    status_columns = (("last minute", "last_bar_utc", "<21"),)

    def summary_line(self, c):
        return f"{c.get('minutes', 0)} minutes delivered"

    def status_fields(self, state: dict[str, Any], cfg: Any, vault: Any, key: Any) -> dict[str, Any]:
        return {"last_bar_utc": state.get("last_bar_utc")}


RECORDS = Records()
