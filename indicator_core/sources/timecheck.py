"""Which trade times a file may hold: its day (from its name), plausible epoch ms, not the future.

A trade file is named after a day (``trades_2026-11-23.jsonl``).  A trade
whose ``ts`` lies outside that day, by more than a small tolerance either side,
is not believed: it is rejected like any bad line, with its file, line and
reason.  So is a ``ts`` that cannot be epoch milliseconds (microseconds,
seconds, the year 10000) and, against the wall clock at the start of the pass,
a ``ts`` in the future.  One such trade can therefore neither open a bar far
away (writing empty bars up to it) nor make every later real trade "late".

The day of a file is a UTC day unless its pattern says otherwise: OKX's own
daily archive files (``{inst}-trades-{date}.csv`` / ``.zip``) split days at
UTC+8 (``[input] day_offsets``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

MINUTE_MS = 60_000
DAY_MS = 86_400_000
PLAUSIBLE_FROM = 1_230_768_000_000  # 2009-01-01T00:00:00Z: no crypto trade is older
PLAUSIBLE_UNTIL = 4_102_444_800_000  # 2100-01-01T00:00:00Z: a later "ms" value is µs, ns or garbage
DEFAULT_TOLERANCE_MINUTES = 10  # either side of a file's day: exporters that roll files a little late
AHEAD_OF_CLOCK_MS = 5 * MINUTE_MS  # a trade later than the wall clock plus this is from the future


def iso_ms(ts: int) -> str:
    try:
        return _dt.datetime.fromtimestamp(ts / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    except (OverflowError, OSError, ValueError):
        return "out of range"


def parse_offset(text: str) -> int:
    """``"+08:00"`` -> minutes east of UTC; ValueError for anything else."""
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":" or not (text[1:3] + text[4:]).isdigit():
        raise ValueError(f"{text!r} is not a UTC offset like +08:00 or -05:00")
    minutes = int(text[1:3]) * 60 + int(text[4:])
    if minutes > 14 * 60 or int(text[4:]) >= 60:
        raise ValueError(f"{text!r} is not a UTC offset like +08:00 or -05:00")
    return minutes if text[0] == "+" else -minutes


@dataclass(frozen=True)
class TimeWindow:
    """The ``ts`` values a file may hold: ``lo <= ts < hi`` (both already include every bound)."""

    lo: int
    hi: int
    day: str = ""  # the file's date, e.g. "2026-11-23"
    offset: str = "UTC"  # how its day is cut, e.g. "UTC" or "UTC+08:00"
    tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES
    clock_hi: int | None = None  # the wall-clock bound (exclusive), if any

    @classmethod
    def for_day(cls, day: str, offset_minutes: int = 0, tolerance_minutes: int = DEFAULT_TOLERANCE_MINUTES,
                now_ms: int | None = None) -> "TimeWindow":
        start = int(_dt.datetime.fromisoformat(day).replace(tzinfo=_dt.timezone.utc).timestamp()) * 1000
        start -= offset_minutes * MINUTE_MS
        tol = tolerance_minutes * MINUTE_MS
        lo = max(start - tol, PLAUSIBLE_FROM)
        hi = min(start + DAY_MS + tol, PLAUSIBLE_UNTIL)
        clock_hi = None
        if now_ms is not None:
            clock_hi = now_ms + AHEAD_OF_CLOCK_MS + 1
            hi = min(hi, clock_hi)
        if offset_minutes:
            sign = "+" if offset_minutes > 0 else "-"
            label = f"UTC{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
        else:
            label = "UTC"
        return cls(lo, max(hi, lo), day, label, tolerance_minutes, clock_hi)

    def reason(self, ts: int) -> str | None:
        """Why ``ts`` is refused, or ``None`` if it is inside the window."""
        if self.lo <= ts < self.hi:
            return None
        if not PLAUSIBLE_FROM <= ts < PLAUSIBLE_UNTIL:
            hint = ""
            if ts >= 10**17:
                hint = " (nanoseconds?)"
            elif ts >= 10**14:
                hint = " (microseconds?)"
            elif ts < 10**11:
                hint = " (seconds?)"
            return f"ts {ts} is not epoch milliseconds of 2009-2099{hint}"
        if self.clock_hi is not None and ts >= self.clock_hi:
            return f"ts {ts} ({iso_ms(ts)}) is more than {AHEAD_OF_CLOCK_MS // MINUTE_MS} minutes ahead of the clock"
        return (
            f"ts {ts} ({iso_ms(ts)}) is outside the file's day {self.day} ({self.offset}, "
            f"±{self.tolerance_minutes} min); if the exporter names files by another time zone, "
            "set [input] day_offsets in the config"
        )

    def inside(self, ts: np.ndarray) -> np.ndarray:
        """The rows of an int64 ``ts`` column inside the window."""
        return (ts >= self.lo) & (ts < self.hi)
