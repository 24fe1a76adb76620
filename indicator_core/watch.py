"""Follow mode's wait between passes: file-system notifications, with polling as the fallback.

A follower waits at most ``--poll`` seconds between passes.  With a watcher
(the ``watchdog`` library: inotify on Linux, ReadDirectoryChangesW on Windows,
FSEvents/kqueue on macOS) it wakes as soon as a line is appended to, or a file
created under, ``raw/trades`` or ``raw/books`` of the vault, waits a few
milliseconds more so that a burst of appends is one pass, and starts the pass.
Polling stays on under the watcher: a change that brings no event (a network
mount written from another machine, an event the OS dropped) is seen within
``--poll`` seconds, exactly as without a watcher.

Whatever goes wrong with the watcher (the library missing, an OS limit on
watches, a folder that cannot be watched), the follower polls and says so once.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

DEBOUNCE_SECONDS = 0.003  # a burst of appends (one writer's flushes) is one pass
SLICE_SECONDS = 0.5
UNANNOUNCED_PASSES = 3
# inotify also reports the follower's own reads (opened, closed without writing): those never wake it
WAKING_EVENTS = frozenset({"created", "modified", "moved", "closed"})


class Wakeup:
    """Waits between passes; :meth:`wait` returns early when a watched file changes."""

    def __init__(self, vault: Path, poll_seconds: float, watch: bool = True, log: TextIO | None = None) -> None:
        self.vault = vault
        self.poll_seconds = poll_seconds
        self.log = log if log is not None else sys.stderr
        self.event = threading.Event()
        self.observer: Any = None
        self.woken = True  # the last wait ended on an event (the first pass reads what was there: no wait)
        self.said_no_events = False
        self.unannounced = 0  # passes in a row that the clock woke and that read new lines
        if watch:
            self.start()

    @property
    def watching(self) -> bool:
        return self.observer is not None

    def start(self) -> None:
        try:
            self.observer = _start_observer(self.vault, self.event)
        except Exception as exc:  # noqa: BLE001 - any failure of the watcher means polling, never a stop
            self.observer = None
            why = str(exc) or type(exc).__name__
            print(f"follow: file-system notifications are not available ({why}); polling every "
                  f"{self.poll_seconds:g} s instead", file=self.log, flush=True)

    def wait(self) -> None:
        """Until a watched file changes (plus the debounce) or ``poll_seconds`` have passed."""
        end = time.monotonic() + self.poll_seconds
        self.woken = False
        while not self.woken:  # in slices: Ctrl-C is seen within one (a long wait on a lock may not be, on Windows)
            left = end - time.monotonic()
            if left <= 0:
                break
            self.woken = self.event.wait(min(left, SLICE_SECONDS))
        if self.woken:
            time.sleep(DEBOUNCE_SECONDS)
        self.event.clear()  # before the pass reads: what is appended after this sets it again

    def after_pass(self, lines: int) -> None:
        """Passes woken by the clock that read new lines: those changes brought no event (said once).

        Three in a row with no event between them: one alone may be an append that landed just
        as the wait ran out, its event a moment behind.
        """
        if self.woken:
            self.unannounced = 0
        elif lines:
            self.unannounced += 1
        if self.watching and self.unannounced >= UNANNOUNCED_PASSES and not self.said_no_events:
            self.said_no_events = True
            print(f"follow: new lines came under {self.vault / 'raw'} without a file-system notification "
                  f"(a network or shared mount?); they are read by polling every {self.poll_seconds:g} s",
                  file=self.log, flush=True)

    def close(self) -> None:
        if self.observer is not None:
            try:
                self.observer.stop()
                self.observer.join(2.0)
            except Exception:  # noqa: BLE001 - stopping a watcher never fails the follower
                pass
            self.observer = None


def _start_observer(vault: Path, event: threading.Event) -> Any:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    raw = vault / "raw"  # raw/trades and raw/books, and a kind's folder created later
    under = str(raw) + os.sep  # the follower's own writes (derived/, state/) never wake it

    class Handler(FileSystemEventHandler):
        def on_any_event(self, ev: Any) -> None:
            if ev.event_type in WAKING_EVENTS and (
                    os.fsdecode(ev.src_path).startswith(under) or os.fsdecode(getattr(ev, "dest_path", "")).startswith(under)):
                event.set()

    observer = Observer()
    observer.schedule(Handler(), str(raw if raw.is_dir() else vault), recursive=True)
    observer.daemon = True
    observer.start()
    return observer
