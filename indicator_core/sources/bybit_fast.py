"""The fast path for Bybit ``publicTrade`` pushes: the trades of a chunk read column-wise with numpy.

A push holds one or more trades, so the lines of a file have no one layout;
its trades have.  Where every line of the chunk is a push in the first line's
shape (``{"topic":"publicTrade.SYMBOL","type":"snapshot","ts":N,"data":[...]}``)
the trades are cut out, one a line, into a second buffer, and read like OKX's
lines (:func:`indicator_core.sources.columnar.parse_with_layout`: ``T`` the
time, ``S`` the side, ``p`` and ``v`` decimals, ``i`` the id as its digest and
its place, the others ignored).  A chunk with any line or trade out of that
shape, or a trade outside the file's day, is read by the reference reader
(:mod:`.bybit`) whole, so both give the same result on every input.
"""

from __future__ import annotations

import re

import numpy as np
import orjson

from . import bybit
from .binance_fast import _spans
from .. import native
from .columnar import Layout, parse_counted_lines
from .parsed import ColumnBuilder, ParsedChunk, Reject
from .parsed import line_ends as find_line_ends
from .timecheck import TimeWindow

_KEYS = {"T": ("ts", "int"), "S": ("side", "Side"), "v": ("sz", "dec"), "p": ("px", "dec"), "i": ("tradeId", "id"),
         "L": ("L", "skip"), "BT": ("BT", "skip_word"), "RPI": ("RPI", "skip_word"), "seq": ("seq", "skip_digits")}
_DATA = b'"data":['
_KERNEL = native.load("trades")


class _Slow(Exception):
    """A line or trade the column-wise reader does not take: the reference reads the chunk."""


def _item_layout(item: bytes, symbol: str) -> Layout | None:
    spans = _spans(item)
    if spans is None:
        return None
    keys = [k for k, *_ in spans]
    if "s" not in keys or {"T", "S", "v", "p", "i"} - set(keys) or set(keys) - set(_KEYS) - {"s"}:
        return None
    literals, fields, kinds, pos = [], [], [], 0
    for key, a, b in spans:
        if key == "s":
            if item[a:b] != symbol.encode():
                return None
            continue  # the symbol: part of the literal run
        field, kind = _KEYS[key]
        literals.append(item[pos:a])
        fields.append(field)
        kinds.append(kind)
        pos = b
    literals.append(item[pos:])
    if any(b"," not in lit for lit in literals[1:-1]):
        return None
    return Layout(tuple(literals), tuple(fields), tuple(kinds))


def _data_at(buf: bytes, view: np.ndarray, after: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Where each line's `,"data":[` starts, checking the push time before it is digits (13 of them, as in
    every Bybit push of these years, read in bulk; any other count, line by line)."""
    at = after + 14  # 13 digits, then the comma
    if np.all(at + len(_DATA) < ends) and np.array_equal(
            view[at[:, None] + np.arange(len(_DATA))], np.broadcast_to(np.frombuffer(_DATA, dtype=np.uint8),
                                                                       (len(at), len(_DATA)))):
        digits = view[after[:, None] + np.arange(13)]
        if np.all((digits >= 0x30) & (digits <= 0x39)) and np.all(view[at - 1] == 0x2C):
            return at
    found = np.array([m.start() for m in re.finditer(re.escape(_DATA), buf)], dtype=np.int64)
    if len(found) != len(ends) or np.any(np.searchsorted(ends, found) != np.arange(len(ends))):
        raise _Slow
    if not all(buf[a:b - 1].isdigit() for a, b in zip(after.tolist(), found.tolist())) or np.any(view[found - 1] != 0x2C):
        raise _Slow
    return found


def parse_chunk(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None = None,
                line_ends: np.ndarray | None = None) -> ParsedChunk:
    """The same as :func:`bybit.parse_lines`; a chunk of pushes in one shape read column-wise."""
    buf = bytes(buf)
    try:
        return _fast(buf, first_line_no, symbol, window, line_ends)
    except _Slow:
        return bybit.parse_lines(buf, first_line_no, symbol, window)


def _fast(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None,
          line_ends: np.ndarray | None) -> ParsedChunk:
    if len(buf) < 16 or buf[-1] != 0x0A:
        raise _Slow
    first = buf[:buf.index(b"\n")]
    at = first.find(_DATA)
    head = re.fullmatch(rb'(\{"topic":"publicTrade\.' + re.escape(symbol.encode()) + rb'","type":"snapshot","ts":)\d+,',
                        first[:at]) if at > 0 else None
    if head is None or not first.endswith(b"]}"):
        raise _Slow
    prefix = head.group(1)
    cut = _KERNEL.split_pushes(buf, prefix, b"," + _DATA) if _KERNEL is not None else _cut(buf, prefix, line_ends)
    if cut is None:
        raise _Slow
    items, counts = cut
    counts = np.frombuffer(counts, dtype=np.int64) if isinstance(counts, bytes) else counts
    n_items = int(counts.sum())
    layout = _item_layout(items[:items.index(b"\n")], symbol)
    if layout is None:
        raise _Slow
    per_push: list[np.ndarray] = []  # each trade's push and its place in it, for a reject (made when needed)

    def slow_item(out: ColumnBuilder, raw: bytes, line_no: int) -> None:
        """A trade the layout did not take: a trade the reference refuses (outside the file's day, most
        often) is its reject, on its push's line as the reference writes it; any other, the reference path."""
        try:
            bybit.add_item(bybit.BybitBuilder(), orjson.loads(raw), symbol, window)
        except bybit.BadTrade as exc:
            if not per_push:
                push_of = np.repeat(np.arange(len(counts)), counts)
                per_push.extend((push_of, np.arange(len(push_of)) - np.repeat(np.cumsum(counts) - counts, counts)))
            push, k = int(per_push[0][line_no - 1]), int(per_push[1][line_no - 1])
            ends = find_line_ends(buf) if line_ends is None else line_ends
            raw_line = buf[int(ends[push - 1]) + 1 if push else 0:int(ends[push])]
            out.rejects.append(Reject(first_line_no + push, f"data[{k}]: {exc}", bybit.snippet(raw_line)))
            return
        except orjson.JSONDecodeError:
            pass
        raise _Slow

    # a push holds several trades: one outside its day is a reject of its push (data[k]), as the reference says
    got = parse_counted_lines(items, 1, n_items, layout, slow_item, window, outside_ok=False)
    got.lines = len(counts)
    return got


def _cut(buf: bytes, prefix: bytes, line_ends: np.ndarray | None) -> tuple[bytes, np.ndarray] | None:
    """What ``_native_trades.split_pushes`` gives, with numpy: the trades one a line, and each push's count."""
    ends = find_line_ends(buf) if line_ends is None else line_ends
    starts = np.concatenate(([0], ends[:-1] + 1))
    view = np.frombuffer(buf, dtype=np.uint8)
    # every line: the prefix, the push time's digits, `,"data":[`, the trades, `]}`
    p = np.frombuffer(prefix, dtype=np.uint8)
    if np.any(starts + len(p) + 10 > ends) or not np.array_equal(
            view[starts[:, None] + np.arange(len(p))], np.broadcast_to(p, (len(starts), len(p)))):
        return None
    data_at = _data_at(buf, view, starts + len(prefix), ends)
    if np.any(view[ends - 1] != 0x7D) or np.any(view[ends - 2] != 0x5D) or np.any(data_at + len(_DATA) >= ends - 2):
        return None
    # the trades, one a line (slices and one join: faster here than a numpy mask over the chunk)
    bodies = [buf[a:b] for a, b in zip((data_at + len(_DATA)).tolist(), (ends - 2).tolist())]
    items = b"\n".join(bodies).replace(b'},{"T":', b'}\n{"T":') + b"\n"
    return items, np.array([b.count(b'},{"T":') + 1 for b in bodies], dtype=np.int64)
