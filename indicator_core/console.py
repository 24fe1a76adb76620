"""The follower's console: one status line, not a line per pass.

On a terminal the line is rewritten in place after every pass (a carriage
return, the line, and spaces over the rest of a longer previous one: no
escape codes, which a Windows console may not understand), so it shows the
totals since the start and the time of the last pass.  When the output is not
a terminal (a log file, a service manager), a line is written only when
something new was read, and at most once every ``interval`` seconds (60 by
default), with the totals since the start; the last totals are written when
the follower stops.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

from .runtime.summary import RunSummary

INTERVAL_SECONDS = 60.0
_KEYS = ("trades", "bars", "late", "gaps", "rejects")
_monotonic = time.monotonic


class FollowStatus:
    def __init__(self, out: TextIO, interval: float = INTERVAL_SECONDS,
                 clock: Callable[[], float] | None = None, extra: Callable[[], str] | None = None) -> None:
        self.out = out
        self.extra = extra  # more to say on the same line (`indicators live`: the recorder's counts)
        self.interval = interval
        self.clock = clock or _monotonic
        try:
            self.tty = bool(out.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.totals = dict.fromkeys(_KEYS, 0)
        self.instruments = 0
        self.last_change: str | None = None  # wall-clock time of the last pass that read new lines
        self.dirty = False  # totals changed since the last line written (not on a terminal)
        self.last_line: float | None = None
        self.open_line = False  # a terminal line is on screen without its newline
        self.shown = 0  # length of that line

    def _text(self) -> str:
        t = self.totals
        text = (f"{time.strftime('%H:%M:%S')} following {self.instruments} instruments: {t['trades']} trades, "
                f"{t['bars']} bars, {t['late']} late, {t['gaps']} gaps, {t['rejects']} rejects")
        text += f"; last new lines {self.last_change}" if self.last_change else "; no new lines yet"
        return f"{self.extra()} | {text}" if self.extra is not None else text

    def update(self, summary: RunSummary) -> None:
        """After each pass."""
        self.instruments = len({s.key for s in summary.instruments})  # trades and books of one count once
        if summary.total("lines"):
            for k in _KEYS:
                self.totals[k] += summary.total(k)
            self.last_change = time.strftime("%H:%M:%S")
            self.dirty = True
        if self.tty:
            text = self._text()[: self._width() - 1]  # a line longer than the terminal would wrap and not rewind
            # spaces, not an escape sequence, erase the rest of a longer previous line (a Windows console too)
            self.out.write("\r" + text + " " * max(0, self.shown - len(text)))
            self.out.flush()
            self.shown = len(text)
            self.open_line = True
            return
        now = self.clock()
        if self.dirty and (self.last_line is None or now - self.last_line >= self.interval):
            self._line()
            self.last_line = now

    def _width(self) -> int:
        import shutil

        return max(shutil.get_terminal_size().columns, 20)

    def _line(self) -> None:
        self.out.write(self._text() + "\n")
        self.out.flush()
        self.dirty = False

    def close(self) -> None:
        """When the follower stops: end the terminal line, or write the totals not yet written."""
        if self.open_line:
            self.out.write("\n")
            self.out.flush()
            self.open_line = False
            self.dirty = False
        elif self.dirty:
            self._line()
