"""Progress display of a run: a byte counter per instrument.

``no_progress`` costs nothing (an incremental run of a few milliseconds
should not pay for a display); ``terminal_progress`` is a tqdm bar that
shows itself only on a terminal.
"""

from __future__ import annotations

from typing import Callable, Protocol


class Progress(Protocol):
    def update(self, n: int) -> object: ...
    def close(self) -> object: ...


ProgressFactory = Callable[[int, str], Progress]
"""``factory(total_bytes, instrument)`` -> a :class:`Progress` for one instrument's pass."""


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(total: int, desc: str) -> Progress:
    return _Silent()


def terminal_progress(total: int, desc: str) -> Progress:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False, disable=None)
