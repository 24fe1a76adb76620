"""Binance USDⓈ-M and Bybit v5 order-book lines (SPEC section 15), read into the pushes :mod:`.book_stream` applies.

**Binance** (``binance/perps/{SYMBOL}``): ``depthUpdate`` events of ``{symbol}@depth@100ms`` (bare or
combined-stream) and the REST snapshots (``{"lastUpdateId", "E", "T", "bids", "asks"}``) written into the
same file where they were fetched.  An update is a push with ``seq`` = ``u``, ``prev`` = ``pu`` and
``first`` = ``U``; a snapshot replaces the book, and the next update applied must straddle its id
(``U <= lastUpdateId <= u``; older ones are skipped and counted), every later one continues the last
(``pu`` = the previous ``u``).  Quantities are absolute, ``"0"`` removes the level; the push time is ``T``.

**Bybit** (``bybit/perps/{SYMBOL}``): ``orderbook.{depth}.{SYMBOL}`` pushes, ``type`` ``snapshot`` (a
restart when ``u`` is 1) or ``delta``; a delta is a push with ``seq`` = ``u`` and ``prev`` = ``u - 1``, so
one whose ``u`` is not the last plus one is a sequence gap and one at or below it a duplicate.  The push
time is ``cts`` when present, else ``ts``.  Neither venue sends a checksum.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import orjson

from ..sources.files import Chunk
from ..sources.parsed import Reject, complete_lines
from .okx_books import BadPush, Push, _levels

_TEXT = 200


class LineBooks:
    """The lines of a chunk read one by one into pushes and rejects (in line order, as iterated)."""

    __slots__ = ("chunk", "inst_id", "read", "lines", "other_channel", "control")

    def __init__(self, chunk: Chunk, inst_id: str, read: Callable[[Any, int, str], list[Push] | str | None]) -> None:
        self.chunk, self.inst_id, self.read = chunk, inst_id, read
        self.lines = self.other_channel = self.control = 0

    def __iter__(self) -> Iterator[Push | Reject]:
        lines = complete_lines(self.chunk.buf)
        first = self.chunk.first_line or 1
        for k, raw in enumerate(lines):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line.strip():
                yield Reject(first + k, "empty line", "")
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Reject(first + k, f"not valid JSON ({exc.args[0].split(':')[0]})", raw[:_TEXT].decode(errors="replace"))
                continue
            try:
                got = self.read(doc, first + k, self.inst_id)
            except (BadPush, KeyError, TypeError, ValueError) as exc:
                got = str(exc) if isinstance(exc, BadPush) else f"not a book push of this venue ({type(exc).__name__}: {exc})"
            if got is None:
                self.other_channel += 1  # another stream of the venue recorded beside the book (trades, tickers)
            elif isinstance(got, str):
                yield Reject(first + k, got, raw[:_TEXT].decode(errors="replace"))
            else:
                yield from got
        self.lines += len(lines)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadPush(f"{name!r} is not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise BadPush(f"{name!r} is not an integer: {value!r}") from None


def binance_line(doc: Any, line_no: int, symbol: str) -> list[Push] | str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    if "stream" in doc and "data" in doc:
        doc = doc["data"]  # a combined stream's wrapper
    if "lastUpdateId" in doc:  # a REST snapshot, written where it was fetched
        named = doc.get("snapshot_of", symbol)
        if named != symbol:
            return None
        ts = _int(doc.get("T", doc.get("E")), "T")
        return [Push(line_no, True, ts, _levels(doc["bids"], "bids"), _levels(doc["asks"], "asks"), 0,
                     _int(doc["lastUpdateId"], "lastUpdateId"), None, None, True)]
    event = doc.get("e")
    if event != "depthUpdate":
        return None if isinstance(event, str) or "result" in doc else "neither a depthUpdate nor a REST depth snapshot"
    if doc.get("s") != symbol:
        return f"a push for {doc.get('s')!r} in the folder of {symbol}"
    return [Push(line_no, False, _int(doc["T"], "T"), _levels(doc["b"], "b"), _levels(doc["a"], "a"), 0,
                 _int(doc["u"], "u"), _int(doc["pu"], "pu"), _int(doc["U"], "U"))]


def bybit_line(doc: Any, line_no: int, symbol: str) -> list[Push] | str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    topic = doc.get("topic")
    if not isinstance(topic, str):
        return None if "op" in doc or "success" in doc else "no \"topic\" (not a Bybit v5 push)"
    if not topic.startswith("orderbook."):
        return None
    data = doc["data"]
    if data.get("s") != symbol or not topic.endswith("." + symbol):
        return f"a push for {data.get('s')!r} in the folder of {symbol}"
    kind = doc.get("type")
    if kind not in ("snapshot", "delta"):
        return f"\"type\" is {kind!r}, expected \"snapshot\" or \"delta\""
    u = _int(data["u"], "u")
    ts = _int(doc["cts"] if doc.get("cts") is not None else doc["ts"], "ts")
    snapshot = kind == "snapshot"
    return [Push(line_no, snapshot, ts, _levels(data["b"], "b"), _levels(data["a"], "a"), 0, u,
                 None if snapshot else u - 1)]


def binance_chunk(chunk: Chunk, inst_id: str, channel: str) -> LineBooks:
    return LineBooks(chunk, inst_id, binance_line)


def bybit_chunk(chunk: Chunk, inst_id: str, channel: str) -> LineBooks:
    return LineBooks(chunk, inst_id, bybit_line)
