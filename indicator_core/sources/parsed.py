"""The result of parsing a chunk of trade lines: raw columns plus the rejected lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import native

_KERNEL = native.load("trades")


@dataclass
class Reject:
    """A line that was skipped, with where it was and why (SPEC section 7)."""

    line: int  # 1-based line number in its file
    reason: str
    text: str  # the start of the line, for the rejects log
    # a one-trade line refused only for its time (outside its file's window): the time; such lines of a file
    # are logged as one summary line (see streams/trade_stream.py), not one each
    ts: int | None = None


# a file's first lines refused only for their time are logged one by one; the rest, counted, in one line
LISTED_PER_FILE = 10


@dataclass
class Outside:
    """Lines of a chunk read column-wise and refused only for their time (outside the file's window): their
    line numbers (ascending) and times, the start of the first ``LISTED_PER_FILE + 1`` of them, and the window
    (for their reason)."""

    lines: np.ndarray
    ts: np.ndarray
    texts: list[str]
    window: Any

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class ParsedChunk:
    """Trades of a chunk of complete lines, in line order, as raw columns.

    ``px_m``/``px_s`` are each price's mantissa and decimal scale as written
    (``"60000.10"`` is ``6000010``, ``2``); the same for ``sz``.  ``count`` is
    the number of fills a record stands for (1 unless OKX's aggregated
    ``trades`` channel merged several).
    """

    ts: np.ndarray
    trade_id: np.ndarray
    count: np.ndarray
    is_buy: np.ndarray
    px_m: np.ndarray
    px_s: np.ndarray
    sz_m: np.ndarray
    sz_s: np.ndarray
    rejects: list[Reject] = field(default_factory=list)
    lines: int = 0  # complete lines consumed
    summary: Any = None  # a clean chunk's aggregates from the parse thread (indicator_core.fastpath), if any
    skipped: int = 0  # valid lines that are not trades of the tape (a Binance raw trade whose X is not MARKET)
    keys: Any = None  # the trade ids as written, where they are not integers (Bybit): trade_id holds their digests
    id_space: str | None = None  # what the ids count where a venue has two (Binance: "aggTrade" or "trade")
    outside: Outside | None = None  # lines read column-wise and refused only for their time
    window: Any = None  # the file's TimeWindow, when the chunk was read against one

    def __len__(self) -> int:
        return len(self.ts)

    def all_rejects(self) -> list[Reject]:
        """Every refused line in line order, those kept aside for their time (``outside``) as the reference reader
        would refuse them (with their text only for the first ones: the rejects log shows no other)."""
        if self.outside is None or not len(self.outside):
            return list(self.rejects)
        o = self.outside
        aside = [Reject(int(line), o.window.reason(int(ts)), o.texts[k] if k < len(o.texts) else "", int(ts))
                 for k, (line, ts) in enumerate(zip(o.lines.tolist(), o.ts.tolist()))]
        return sorted([*self.rejects, *aside], key=lambda r: r.line)

    @classmethod
    def empty(cls) -> "ParsedChunk":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, np.zeros(0, dtype=bool), z, z, z, z)


def complete_lines(buf: bytes | memoryview) -> list[bytes]:
    """The lines of a chunk of complete lines, without their ``\\n`` (what every reference reader walks)."""
    lines = bytes(buf).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


class LazyKeys:
    """Trade ids as written (Bybit's), kept as spans of the chunk's bytes and made text only where read
    (a late trade's log line, a whale record): most are never looked at."""

    __slots__ = ("buf", "starts", "ends")

    def __init__(self, buf: bytes, starts: np.ndarray, ends: np.ndarray) -> None:
        self.buf, self.starts, self.ends = buf, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            return self.buf[int(self.starts[index]):int(self.ends[index])].decode()
        return LazyKeys(self.buf, self.starts[index], self.ends[index])

    def tolist(self) -> list[str]:
        return [self[k] for k in range(len(self))]


class ColumnBuilder:
    """Collects parsed trades row by row (the portable, pure-Python path)."""

    __slots__ = ("ts", "trade_id", "count", "is_buy", "px_m", "px_s", "sz_m", "sz_s", "rejects")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.trade_id: list[int] = []
        self.count: list[int] = []
        self.is_buy: list[bool] = []
        self.px_m: list[int] = []
        self.px_s: list[int] = []
        self.sz_m: list[int] = []
        self.sz_s: list[int] = []
        self.rejects: list[Reject] = []

    def add(self, ts: int, trade_id: int, count: int, is_buy: bool, px: tuple[int, int], sz: tuple[int, int]) -> None:
        self.ts.append(ts)
        self.trade_id.append(trade_id)
        self.count.append(count)
        self.is_buy.append(is_buy)
        self.px_m.append(px[0])
        self.px_s.append(px[1])
        self.sz_m.append(sz[0])
        self.sz_s.append(sz[1])

    def build(self, lines: int) -> ParsedChunk:
        return ParsedChunk(
            ts=np.array(self.ts, dtype=np.int64),
            trade_id=np.array(self.trade_id, dtype=np.int64),
            count=np.array(self.count, dtype=np.int64),
            is_buy=np.array(self.is_buy, dtype=bool),
            px_m=_int_column(self.px_m),
            px_s=np.array(self.px_s, dtype=np.int64),
            sz_m=_int_column(self.sz_m),
            sz_s=np.array(self.sz_s, dtype=np.int64),
            rejects=self.rejects,
            lines=lines,
        )


def _int_column(values: list[int]) -> np.ndarray:
    if values and max(values) >= 2**62:
        return np.array(values, dtype=object)
    return np.array(values, dtype=np.int64)


def count_lines(buf: bytes) -> int:
    """How many lines ``buf`` ends.

    A count is a quick pass, and the parsers find the line ends themselves: the compiled kernel
    while it reads the lines, numpy from where the commas are (OKX lines) or by a search.
    """
    if _KERNEL is not None:
        return _KERNEL.count_lines(buf)
    return int(np.count_nonzero(np.frombuffer(buf, dtype=np.uint8) == 0x0A))


def line_ends(buf: bytes) -> np.ndarray:
    """Offsets of every ``\\n`` in ``buf``."""
    if _KERNEL is not None:
        return np.frombuffer(_KERNEL.line_ends(buf), dtype=np.int64)
    return np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0x0A)


_COLUMNS = ("ts", "trade_id", "count", "is_buy", "px_m", "px_s", "sz_m", "sz_s")


def splice(fast_lines: np.ndarray, fast: ParsedChunk, slow_lines: np.ndarray, slow: ParsedChunk,
           per_line: np.ndarray) -> ParsedChunk:
    """Merge two parses of one chunk in line order.

    ``fast`` holds one trade for each line of ``fast_lines``; ``slow`` holds
    ``per_line[i]`` trades (a push line several, a rejected line none) for
    each line ``i`` of ``slow_lines``.  Both index lists are ascending.
    """
    offsets = np.cumsum(per_line) - per_line  # where each line's trades go
    total = int(per_line.sum())
    slow_counts = per_line[slow_lines]
    first_of_line = np.repeat(np.cumsum(slow_counts) - slow_counts, slow_counts)
    slow_pos = np.repeat(offsets[slow_lines], slow_counts) + (np.arange(len(slow)) - first_of_line)
    fast_pos = offsets[fast_lines]
    merged = {}
    for name in _COLUMNS:
        a, b = getattr(fast, name), getattr(slow, name)
        dtype = object if object in (a.dtype, b.dtype) else a.dtype
        out = np.empty(total, dtype=dtype)
        out[fast_pos] = a
        out[slow_pos] = b
        merged[name] = out
    chunk = ParsedChunk(**merged, rejects=list(slow.rejects), lines=len(per_line), outside=fast.outside)
    if fast.keys is not None or slow.keys is not None:  # ids as written (Bybit): in the same order
        if not len(slow):
            chunk.keys = fast.keys
        elif not len(fast):
            chunk.keys = slow.keys
        else:
            keys = np.empty(total, dtype=object)
            keys[fast_pos] = [fast.keys[i] for i in range(len(fast))] if fast.keys is not None else fast.trade_id
            keys[slow_pos] = [slow.keys[i] for i in range(len(slow))] if slow.keys is not None else slow.trade_id
            chunk.keys = keys
    return chunk
