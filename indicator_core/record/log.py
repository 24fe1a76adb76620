"""``recorder.jsonl``: what happened to each recorded instrument's connection, and its receive delay.

``Vault/derived/quality/{exchange}/{market}/{SYMBOL}/recorder.jsonl``, one JSON
object a line, appended whole and flushed at once: ``connect``, ``subscribe``,
``disconnect``, ``notice`` and ``switch`` (OKX 64008), ``backfill``, ``gap``,
``malformed``, ``repaired`` (a torn last line cut back), and per minute of
receive time ``delay``: the median and the largest of receive time − exchange
time over the minute's pushes, in milliseconds.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..timeutil import MINUTE_MS, iso_minute, iso_ms


class RecorderLog:
    """The logs of every recorded instrument, opened on first use."""

    def __init__(self, vault: Path) -> None:
        self.vault = vault
        self._files: dict[str, BinaryIO] = {}
        self._delays: dict[str, tuple[int, list[int]]] = {}  # label -> (minute, delays of that minute)
        self.events: dict[str, int] = {}  # counts by event, for the status line

    def path(self, label: str) -> Path:
        return self.vault / "derived" / "quality" / label / "recorder.jsonl"

    def event(self, label: str, event: str, **fields: Any) -> None:
        f = self._files.get(label)
        if f is None:
            path = self.path(label)
            path.parent.mkdir(parents=True, exist_ok=True)
            f = self._files[label] = open(path, "ab", buffering=0)
        record = {"event": event, "utc": iso_ms(int(time.time() * 1000)), **fields}
        f.write(orjson.dumps(record) + b"\n")
        self.events[event] = self.events.get(event, 0) + 1

    def delay(self, label: str, received_ms: int, exchange_ms: int) -> None:
        """One push's receive delay; a minute's figures are written when the next minute's first push comes."""
        minute = received_ms // MINUTE_MS
        held = self._delays.get(label)
        if held is None or held[0] != minute:
            if held is not None:
                self._write_delay(label, *held)
            held = self._delays[label] = (minute, [])
        held[1].append(received_ms - exchange_ms)

    def _write_delay(self, label: str, minute: int, delays: list[int]) -> None:
        if delays:
            self.event(label, "delay", minute_utc=iso_minute(minute), pushes=len(delays),
                       median_ms=statistics.median(delays), max_ms=max(delays))

    def close(self) -> None:
        for label, held in self._delays.items():
            self._write_delay(label, *held)
        self._delays.clear()
        for f in self._files.values():
            f.close()
        self._files.clear()
