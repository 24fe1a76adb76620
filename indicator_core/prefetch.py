"""Reading and parsing the next chunks in a helper thread while the current one is processed.

The compiled kernels read and parse a chunk without the GIL, and processing a
chunk is mostly Python work on its bars, so the two overlap on a machine with
several cores.  One helper thread reads the chunks in order and parses each
right after reading it; the consumer, when the chunk it needs next is not
ready yet, reads and parses a later one itself rather than wait idle.
Results are handed over in the order of the chunks, so the outputs are the
same as without threads.  An error is raised in the consumer, at the item
where it happened.

One helper, not a reader and a pool of parsers: on 2 cores the main thread and
one helper fill them, and every further thread only adds hand-offs of the GIL
and of the cores (bench/RESULTS.md has the measurements).  On one core the
helper has no core of its own, and its hand-offs cost more than the overlap
gains: the engine asks :func:`usable_cores` before starting one.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

SWITCH_INTERVAL = 0.0001  # seconds; see map_ahead


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity where the system has one (a container's or
    ``taskset``'s limit), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    counted = getattr(os, "process_cpu_count", os.cpu_count)  # Python 3.13+: the affinity on Windows too
    return counted() or 1


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


def _short_switches(change: int) -> None:
    """Enter (+1) or leave (-1) a stretch of short GIL switch intervals; the first to enter saves the
    interval in force and the last to leave restores it (passes may overlap in threads, e.g. under Dask)."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if change > 0 and _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, SWITCH_INTERVAL))
        _switch_users += change
        if change < 0 and _switch_users == 0:
            sys.setswitchinterval(_switch_saved)


def map_inline(fn: Callable[[T], R], items: Iterator[T]) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in this thread (for work too small to be worth a thread)."""
    for item in items:
        yield item, fn(item)


class _Ahead:
    """The state shared by the consumer and the helper of one :func:`map_ahead`.

    ``draw`` serializes drawing from ``items`` (a reader: one thread at a
    time, in order); ``changed`` guards the rest and is notified whenever a
    result arrives, the consumer moves on, the items end, or the pass stops.
    """

    def __init__(self, fn: Callable[[Any], Any], items: Iterator[Any], limit: int) -> None:
        self.fn, self.items, self.limit = fn, items, limit
        self.draw = threading.Lock()
        self.changed = threading.Condition()
        self.results: dict[int, tuple[Any, Any, BaseException | None]] = {}
        self.drawn = 0  # items drawn so far (the next item's number)
        self.consumed = 0  # items handed to the consumer so far
        self.end: int | None = None  # how many items there were, once drawing stopped (exhausted or failed)
        self.stopped = False

    def room(self) -> bool:
        """Whether another item may be drawn: at most ``limit`` drawn and not yet handed over."""
        return self.end is None and not self.stopped and self.drawn - self.consumed < self.limit

    def step(self, wait: bool) -> bool | None:
        """Draw the next item and apply ``fn`` to it.  False once there is nothing more to draw or the pass
        stopped; None, without waiting, when ``wait`` is False and another thread is drawing."""
        if not wait:
            if not self.draw.acquire(blocking=False):
                return None
        else:
            while not self.draw.acquire(timeout=0.05):
                if self.stopped:  # a stop never waits on a draw that cannot end (one cut by an interrupt)
                    return False
        try:
            if self.end is not None or self.stopped:
                return False
            seq = self.drawn
            try:
                item = next(self.items)
            except StopIteration:
                with self.changed:
                    self.end = seq
                    self.changed.notify_all()
                return False
            except BaseException as exc:  # the reader failed: raised in the consumer after the items before it
                with self.changed:
                    self.results[seq] = (None, None, exc)
                    self.drawn = self.end = seq + 1
                    self.changed.notify_all()
                return False
            self.drawn = seq + 1
        finally:
            self.draw.release()
        try:
            entry: tuple[Any, Any, BaseException | None] = (item, self.fn(item), None)
        except BaseException as exc:  # raised in the consumer, at this item
            entry = (item, None, exc)
        with self.changed:
            self.results[seq] = entry
            self.changed.notify_all()
        return True

    def help(self) -> None:
        """The helper thread's loop: draw and apply while there is room, until the items end or the pass stops."""
        while True:
            with self.changed:
                while not self.room():
                    if self.stopped or self.end is not None:
                        return
                    self.changed.wait()
            if self.step(wait=True) is False:
                return

    def take(self, k: int) -> tuple[Any, Any, BaseException | None] | None:
        """Item ``k`` and its result (None after the last item); while it is not ready, work on a later item."""
        with self.changed:
            while k not in self.results:
                if self.end is not None and k >= self.end:
                    return None
                if self.room():
                    self.changed.release()
                    try:
                        done = self.step(wait=False)
                    finally:
                        self.changed.acquire()
                    if done is not None or k in self.results or self.end is not None:
                        continue  # look again: the lock was let go
                self.changed.wait()
            entry = self.results.pop(k)
            self.consumed = k + 1
            self.changed.notify_all()
            return entry

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()


def map_ahead(fn: Callable[[T], R], items: Iterator[T], depth: int = 2) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in the order of ``items``, computed up to ``depth`` items ahead.

    A helper thread draws from ``items`` and applies ``fn`` to each item
    itself.  The consumer, when the item it needs next is still being worked
    on, draws the next one and applies ``fn`` to it too, so that neither core
    idles while there is work.  At most ``depth + 1`` items are drawn and not
    yet handed over.
    """
    ahead = _Ahead(fn, items, depth + 1)
    helper = threading.Thread(target=ahead.help, name="indicator-core-read", daemon=True)
    # A thread waiting for the GIL gets it only when its holder blocks, or after the switch interval
    # (5 ms by default).  The consumer gives the GIL away in every numpy call on a few hundred values
    # and in every write; the helper that takes it then holds it, running Python glue between its GIL-free
    # calls, for up to that interval, while the consumer (the pass's critical path) waits.
    # A short interval bounds those waits: 0.1 ms took a 4M-trade pass from ~1.2 s to ~0.8 s
    # (bench/RESULTS.md).  It is restored when the pass ends.
    _short_switches(+1)
    helper.start()
    try:
        k = 0
        while True:
            entry = ahead.take(k)
            if entry is None:
                return
            item, result, exc = entry
            if exc is not None:
                raise exc
            k += 1
            yield item, result
    finally:
        ahead.stop()
        helper.join()
        close = getattr(items, "close", None)  # the helper has ended: no other thread draws any more
        if close is not None:
            close()
        _short_switches(-1)
