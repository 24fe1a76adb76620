"""A producer's committed records, read from a byte offset on (SPEC sections 8 and 12).

:class:`InputReader` reads only bytes up to the length the producer's state
file says it has committed, so a reader never sees a record that a killed
producer will write again; it remembers how far it has delivered (offset and
a hash of the line before it, to notice a producer rebuilt underneath).  Record
consumers (:mod:`indicator_core.runtime.records`) read their inputs with it,
and the derivatives stream its minute closes (:mod:`indicator_core.streams.derivs_stream`).
"""

from __future__ import annotations

import hashlib
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from ..errors import StateError
from ..indicator import Input
from ..storage import InstrumentKey, derived_dir, read_state, state_path

READ_BYTES = 1 << 20


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:16]


class InputReader:
    """One input of one consumer: the producer's committed records from a byte offset on."""

    def __init__(self, vault: Path, key: InstrumentKey, inp: Input, saved: dict[str, Any] | None,
                 state_file: Path | None = None) -> None:
        self.inp = inp
        self.vault = vault
        if inp.instrument is not None:  # an aggregate's member: its records, not the consumer's instrument's
            key = InstrumentKey(*inp.instrument.split("/"))
        self.key = key
        self.path = derived_dir(vault, inp.indicator, key) / f"{inp.stream}.jsonl"
        # the producer's state file (another one than its indicator's: an input kind's quality log)
        self.state_file = state_file or state_path(vault, inp.indicator, key)
        self.offset = int(saved["offset"]) if saved else 0  # bytes delivered
        self.tail = saved.get("tail") if saved else None  # hash of the last delivered line
        self.checked = self.offset == 0
        self.pending: deque[tuple[int, dict[str, Any], int, bytes]] = deque()  # (minute, record, end, line)
        self.read_to = self.offset
        self.limit = 0  # committed length
        self.last_bar: int | None = None
        self.last_record_minute: int | None = None
        self.started = False  # the producer has a state file
        self._tail_limit = -1

    # --- what the producer has committed --------------------------------------------------
    def refresh(self, consumer: str) -> None:
        state = read_state(self.state_file)
        self.started = state is not None
        if state is None:
            limit, last_bar = 0, None
        else:
            try:
                limit = int(state.get("outputs", {}).get(self.inp.stream, 0))
            except (TypeError, ValueError, AttributeError) as exc:
                raise StateError(f"state file {self.state_file}: bad \"outputs\" ({exc})") from exc
            lb = state.get("last_bar")
            last_bar = lb if isinstance(lb, int) else None
        if limit < self.read_to:
            raise StateError(
                f"{consumer} for {self.key.label} has read {self.read_to} bytes of {self.path}, but its producer "
                f"{self.inp.indicator!r} has committed only {limit}: it was reset or rebuilt. Rebuild {consumer} too "
                f"with `indicators reset --vault {self.vault} --indicator {consumer} --inst {self.key.inst_id}`"
            )
        self.limit, self.last_bar = limit, last_bar
        if not self.checked:
            self._check_tail(consumer)
        if self.inp.one_per_minute and limit and limit != self._tail_limit:
            self.last_record_minute = self.inp.minute(orjson.loads(self._line_before(limit)))
            self._tail_limit = limit

    def _line_before(self, end: int) -> bytes:
        """The whole line ending at byte ``end`` (its ``\\n`` excluded)."""
        back = 4096
        with open(self.path, "rb") as f:
            while True:
                start = max(0, end - back)
                f.seek(start)
                buf = f.read(end - start)
                nl = buf.rfind(b"\n", 0, len(buf) - 1)
                if nl >= 0 or start == 0:
                    return buf[nl + 1:].rstrip(b"\n")
                back *= 4

    def _check_tail(self, consumer: str) -> None:
        try:
            ok = self.tail is None or _line_hash(self._line_before(self.offset)) == self.tail
        except FileNotFoundError:
            ok = False
        if not ok:
            raise StateError(
                f"{self.path} is not the file {consumer} for {self.key.label} read (its producer "
                f"{self.inp.indicator!r} was rebuilt since). Rebuild {consumer} with "
                f"`indicators reset --vault {self.vault} --indicator {consumer} --inst {self.key.inst_id}`"
            )
        self.checked = True

    def watermark(self) -> int | None:
        """The last minute the producer has passed, ``None`` if none yet."""
        marks = [m for m in (self.last_bar, self.last_record_minute if self.inp.one_per_minute else None) if m is not None]
        return max(marks) if marks else None

    # --- its records -------------------------------------------------------------------------
    def _fill(self) -> None:
        while not self.pending and self.read_to < self.limit:
            with open(self.path, "rb") as f:
                f.seek(self.read_to)
                buf = f.read(min(READ_BYTES, self.limit - self.read_to))
                while b"\n" not in buf:  # a line longer than one read
                    more = f.read(min(READ_BYTES, self.limit - self.read_to - len(buf)))
                    if not more:
                        raise StateError(f"{self.path}: the committed bytes do not end with a whole line")
                    buf += more
            end = buf.rfind(b"\n") + 1
            pos = self.read_to
            for line in buf[:end].splitlines():
                pos += len(line) + 1
                try:
                    record = orjson.loads(line)
                    minute = self.inp.minute(record)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise StateError(f"{self.path}: byte {pos - len(line) - 1}: cannot read this record ({exc})") from exc
                self.pending.append((minute, record, pos, line))
            self.read_to += end

    def peek(self) -> int | None:
        """The minute of the next committed record not yet delivered."""
        self._fill()
        return self.pending[0][0] if self.pending else None

    def pop(self) -> dict[str, Any]:
        _, record, end, line = self.pending.popleft()
        self.offset = end
        self.tail = _line_hash(line)
        return record

    def to_state(self) -> dict[str, Any]:
        return {"offset": self.offset, "tail": self.tail}
