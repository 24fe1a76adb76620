"""UTC time helpers.  A bar is named by its open minute: ``floor(ts_ms / 60000)``."""

from __future__ import annotations

import time

MINUTE_MS = 60_000


_DAY_PREFIX: dict[int, str] = {}  # day number -> "2026-11-23T", filled as days are met
_TIME_OF_DAY = tuple(f"{m // 60:02d}:{m % 60:02d}:00Z" for m in range(1440))  # "14:05:00Z" by minute of the day


def iso_minute(minute: int) -> str:
    """``2026-11-23T14:05:00Z`` for the minute's open time."""
    day, in_day = divmod(minute, 1440)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        if len(_DAY_PREFIX) > 100_000:
            _DAY_PREFIX.clear()
        t = time.gmtime(day * 86400)
        prefix = _DAY_PREFIX[day] = "%04d-%02d-%02dT" % (t.tm_year, t.tm_mon, t.tm_mday)
    return prefix + _TIME_OF_DAY[in_day]


_LAST_RUN: tuple[int, int, list[str]] = (0, 0, [])


def iso_minutes(first: int, count: int) -> list[str]:
    """:func:`iso_minute` of the minutes ``first .. first + count - 1``.

    The last run asked for is kept: every indicator of an instrument asks for
    the same run of empty minutes in turn (``Indicator.on_empty_bars``).
    """
    global _LAST_RUN
    last = _LAST_RUN
    if last[0] == first and last[1] == count:
        return last[2]
    texts = [iso_minute(m) for m in range(first, first + count)]
    _LAST_RUN = (first, count, texts)
    return texts


def iso_ms(ts_ms: int) -> str:
    """``2026-11-23T14:05:12.345Z``: an exact trade time, milliseconds kept."""
    sec, ms = divmod(ts_ms, 1000)
    t = time.gmtime(sec)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms,
    )


# Timeframes in minutes.  Every one divides a UTC day, so periods align to 00:00 UTC.
TIMEFRAMES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}


def period_start(minute: int, tf_minutes: int) -> int:
    """The first minute of the ``tf_minutes`` period holding ``minute`` (UTC aligned)."""
    return minute - minute % tf_minutes


def parse_anchor(text: str) -> int:
    """``"HH:MM"`` (UTC) as minutes after midnight; raises ValueError otherwise."""
    hh, sep, mm = text.partition(":")
    if not (sep and len(hh) == 2 and len(mm) == 2 and hh.isdigit() and mm.isdigit()):
        raise ValueError(f"session anchor must be HH:MM in UTC, got {text!r}")
    h, m = int(hh), int(mm)
    if h > 23 or m > 59:
        raise ValueError(f"session anchor must be a time of day 00:00..23:59, got {text!r}")
    return h * 60 + m


def session_start(minute: int, anchor: int) -> int:
    """The minute the daily session holding ``minute`` began (the latest anchor at or before it)."""
    return minute - (minute - anchor) % 1440


def minute_of_iso(text: str) -> int:
    """The minute of ``2026-11-23T14:05:00Z`` (or with seconds and milliseconds): the inverse of :func:`iso_minute`."""
    import calendar

    if len(text) < 17 or text[4] != "-" or text[10] != "T" or text[13] != ":":
        raise ValueError(f"not an ISO 8601 UTC time: {text!r}")
    secs = calendar.timegm((int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]), 0, 0, 0, 0))
    return secs // 60


class ClosedMinute:
    """What an event of one closed minute (``minute``: epoch minutes) says of its time: the minute's open as
    ISO text and its end in epoch ms (a book's or the derivatives' minute; ``Bar`` has its own)."""

    minute: int

    @property
    def timestamp_utc(self) -> str:
        return iso_minute(self.minute)

    @property
    def end_ms(self) -> int:
        return (self.minute + 1) * MINUTE_MS
