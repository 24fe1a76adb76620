"""Reading and parsing the next chunks in a helper thread while the current one is processed.

The compiled kernels read and parse a chunk without the GIL, and processing a
chunk is mostly Python work on its bars, so the two overlap on a machine with
several cores.  One helper thread reads the chunks in order and parses each
right after reading it; results are handed over in the order of the chunks,
so the outputs are the same as without threads.  An error in the helper is
raised in the consumer, at the item where it happened.

One helper, not a reader and a pool of parsers: on 2 cores the main thread and
one helper fill them, and every further thread only adds hand-offs of the GIL
and of the cores (bench/RESULTS.md has the measurements).
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_END = object()
SWITCH_INTERVAL = 0.0001  # seconds; see map_ahead


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


def map_ahead(fn: Callable[[T], R], items: Iterator[T], depth: int = 2) -> Iterator[tuple[T, R]]:
    """Yield ``(item, fn(item))`` in the order of ``items``, computed up to ``depth`` items ahead.

    One helper thread draws from ``items`` (a reader: it must stay
    sequential) and applies ``fn`` to each item itself.
    """
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                pending.put((item, fn(item), None))
        except BaseException as exc:  # handed to the consumer, raised there
            pending.put((None, None, exc))
        finally:
            pending.put(_END)
            close = getattr(items, "close", None)
            if close is not None:
                close()

    helper = threading.Thread(target=produce, name="indicator-core-read", daemon=True)
    # A thread waiting for the GIL gets it only when its holder blocks, or after the switch interval
    # (5 ms by default).  The consumer gives the GIL away in every numpy call on a few hundred values
    # and in every write; the helper that takes it then holds it, running Python glue between its GIL-free
    # calls, for up to that interval, while the consumer (the pass's critical path) waits.
    # A short interval bounds those waits: 0.1 ms took a 4M-trade pass from ~1.2 s to ~0.8 s
    # (bench/RESULTS.md).  It is restored when the pass ends.
    _short_switches(+1)
    helper.start()
    try:
        while True:
            entry = pending.get()
            if entry is _END:
                return
            item, result, exc = entry
            if exc is not None:
                raise exc
            yield item, result
    finally:
        stop.set()
        while helper.is_alive():  # unblock a helper waiting on a full queue, then let it finish
            try:
                pending.get(timeout=0.05)
            except queue.Empty:
                pass
        helper.join()
        _short_switches(-1)
