"""OKX order-book pushes as recorded (SPEC section 10): the lines of a book file read into :class:`Push` objects.

One WebSocket push per line (``{"arg": {"channel", "instId"}, "action", "data": [...]}``).
:func:`parse_chunk` turns a chunk's lines into pushes or rejects; where the
compiled kernel is built (``_native_books.c``, see :mod:`indicator_core.native`)
it reads the lines in OKX's layout, every other line takes the reference path
here, and both give the same pushes (tested).  What the pushes do to a book is
:mod:`.book_stream`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator

import orjson

from .. import native
from ..config import BOOK_CHANNELS
from ..sources.files import Chunk
from ..sources.parsed import Reject

CHANNELS = BOOK_CHANNELS
SNAPSHOT_ONLY = ("books5", "bbo-tbt")  # every push is a full book, with no "action"


_REJECT_TEXT = 200

_KERNEL = native.load("books")  # the compiled reader of a push line (None: the pure path reads every line)
_LINES_AT_ONCE = 64  # lines read by one call of the kernel (their pushes are then applied one by one)


@dataclass(slots=True)
class Push:
    """One data item of a push, validated; levels are ``[px, sz, ...]`` as received (plain decimal strings)."""

    line: int
    snapshot: bool
    ts: int
    bids: list[list[str]]
    asks: list[list[str]]
    checksum: int
    seq: int | None
    prev: int | None
    # Binance: an update's first id (``U``), and a REST snapshot whose id the next update must straddle
    # (``U <= lastUpdateId <= u``) rather than continue (SPEC section 15)
    first: int | None = None
    straddle: bool = False


class ParsedBooks:
    """The lines of a chunk, read as they are iterated: pushes and rejects in line order.

    Read lazily, so each push is applied and let go before the next line is
    parsed (a chunk of parsed pushes held at once costs the garbage collector
    more than the parse).  The counts are complete once iterated.
    """

    __slots__ = ("chunk", "inst_id", "channel", "lines", "other_channel", "control")

    def __init__(self, chunk: Chunk, inst_id: str, channel: str) -> None:
        self.chunk = chunk
        self.inst_id = inst_id
        self.channel = channel
        self.lines = 0
        self.other_channel = 0
        self.control = 0

    def __iter__(self) -> Iterator[Push | Reject]:
        inst_id, channel = self.inst_id, self.channel
        kernel = _KERNEL
        prefix = _prefix(inst_id, channel) if kernel is not None else None
        if prefix is not None:
            return self._compiled(kernel, prefix)
        return self._pure()

    def _compiled(self, kernel: Any, prefix: bytes) -> Iterator[Push | Reject]:
        """The lines in OKX's layout read in C, a few dozen at a time; every other line as :meth:`_pure` reads it."""
        buf = self.chunk.buf
        self.lines = buf.count(b"\n")
        shape = _shape(self.inst_id, self.channel)
        parse_lines, pos, line_no, end = kernel.parse_lines, 0, self.chunk.first_line, len(buf)
        while pos < end:
            items, pos, line_no = parse_lines(buf, pos, prefix, line_no, Push, _LINES_AT_ONCE)
            if not items:
                break
            for item in items:
                if type(item) is Push:
                    yield item
                else:
                    yield from self._line(item[1], item[0], shape)

    def _line(self, line: bytes, line_no: int, shape: Any) -> list[Push | Reject]:
        """The items of one line, read as :meth:`_pure` reads it."""
        if shape(line) is not None:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                pass
            else:
                item = doc["data"][0]
                return [Push(line_no, doc["action"] == "snapshot", int(item["ts"]), item["bids"], item["asks"],
                             item["checksum"], item.get("seqId"), item.get("prevSeqId"))]
        got = parse_line(line, line_no, self.inst_id, self.channel)
        if type(got) is list:
            return got
        if got is None:
            if b'"event"' in line and b'"data"' not in line:
                self.control += 1
            else:
                self.other_channel += 1
            return []
        return [Reject(line_no, got, line[:_REJECT_TEXT].decode("utf-8", "replace"))]

    def _pure(self) -> Iterator[Push | Reject]:
        inst_id, channel, chunk = self.inst_id, self.channel, self.chunk
        lines = chunk.buf.split(b"\n")
        lines.pop()  # the chunk ends with a line end
        self.lines = len(lines)
        loads = orjson.loads
        shape = _shape(inst_id, channel)
        for line_no, line in enumerate(lines, chunk.first_line):
            if shape(line) is not None:  # OKX's own layout, every price positive: as _known, inline
                try:
                    doc = loads(line)
                except orjson.JSONDecodeError:  # the layout, but not JSON (a number "01", a control character)
                    pass
                else:
                    item = doc["data"][0]
                    yield Push(line_no, doc["action"] == "snapshot", int(item["ts"]), item["bids"], item["asks"],
                               item["checksum"], item.get("seqId"), item.get("prevSeqId"))
                    continue
            got = parse_line(line, line_no, inst_id, channel)
            if type(got) is list:
                yield from got
            elif got is None:
                if b'"event"' in line and b'"data"' not in line:
                    self.control += 1
                else:
                    self.other_channel += 1
            else:
                yield Reject(line_no, got, line[:_REJECT_TEXT].decode("utf-8", "replace"))

    @property
    def items(self) -> list[Push | Reject]:
        return list(self)


class BadPush(ValueError):
    pass


_PLAIN = re.compile(r"(?:\d++(?:\.\d++)?+|\.\d++)\Z", re.ASCII).match  # a plain non-negative decimal: "5", "0.5", ".5"


def _levels(raw: Any, name: str) -> list[list[str]]:
    if not isinstance(raw, list):
        raise BadPush(f"{name} is not a list of levels")
    out = []
    for lv in raw:
        try:
            px, sz = lv[0], lv[1]
            ok = _PLAIN(px) is not None and _PLAIN(sz) is not None
        except (TypeError, KeyError, IndexError):
            ok = False
            px = sz = None
        if not ok or type(lv) is not list:
            if not (isinstance(lv, list) and len(lv) >= 2 and isinstance(px, str) and isinstance(sz, str)):
                raise BadPush(f"a level of {name} is not [px, sz, ...] with px and sz as strings: {str(lv)[:60]}")
            bad = sz if _PLAIN(px) else px
            raise BadPush(f"{name}: not a plain decimal number: {bad!r} (sizes and prices must be non-negative "
                          "plain decimals)")
        if not Decimal(px):
            raise BadPush(f"{name}: price {px!r} is not positive")
        out.append(lv)
    return out


def _int_field(item: dict, key: str, required: bool) -> int | None:
    v = item.get(key)
    if v is None:
        if required:
            raise BadPush(f"no {key!r}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise BadPush(f"{key!r} is not an integer: {v!r}")
    try:
        return int(v)
    except ValueError:
        raise BadPush(f"{key!r} is not an integer: {v!r}") from None


class _Slow(Exception):
    """The fast path met something unusual: the careful path decides (and explains)."""


def _fast_levels(raw: Any) -> list[list[str]]:
    if type(raw) is not list:
        raise _Slow
    out = []
    plain = _PLAIN
    for lv in raw:
        if type(lv) is not list:
            raise _Slow
        px = lv[0]
        sz = lv[1]
        if plain(px) is None or plain(sz) is None:
            raise _Slow
        if not Decimal(px):
            raise _Slow
        out.append(lv)
    return out


def _fast(doc: Any, line_no: int, inst_id: str, channel: str) -> list[Push]:
    """A well-formed push of the instrument's channel, read with few checks; raises on anything else."""
    arg = doc["arg"]
    if arg["channel"] != channel or arg["instId"] != inst_id:
        raise _Slow
    if channel in SNAPSHOT_ONLY:
        snapshot = True
    else:
        action = doc["action"]
        if action == "update":
            snapshot = False
        elif action == "snapshot":
            snapshot = True
        else:
            raise _Slow
    out = []
    for item in doc["data"]:
        t = item["ts"]
        ck = item.get("checksum", 0)
        seq = item.get("seqId")
        prev = item.get("prevSeqId")
        if (type(t) is not str or not t.isascii() or not t.isdigit() or type(ck) is not int
                or (seq is not None and type(seq) is not int) or (prev is not None and type(prev) is not int)):
            raise _Slow
        out.append(Push(line_no, snapshot, int(t), _fast_levels(item["bids"]), _fast_levels(item["asks"]), ck, seq, prev))
    if not out:
        raise _Slow
    return out


_NUM = rb"(?:\d++(?:\.\d++)?+|\.\d++)"  # possessive: a failed match never backtracks into a number
_LEVEL = rb'\["(?=[0.]*+[1-9])' + _NUM + rb'","' + _NUM + rb'"(?:,"[^"\\]*+")*+\]'
_LEVELS = rb"\[(?:" + _LEVEL + rb"(?:," + _LEVEL + rb")*+)?+\]"
_SHAPES: dict[tuple[str, str], Any] = {}


def _shape(inst_id: str, channel: str):
    """A regex for OKX's own layout of a push, every price and size a plain decimal, every price above 0 (in C)."""
    key = (inst_id, channel)
    rx = _SHAPES.get(key)
    if rx is None:
        rx = _SHAPES[key] = re.compile(
            rb'\{"arg":\{"channel":"' + re.escape(channel.encode()) + rb'","instId":"' + re.escape(inst_id.encode())
            + rb'"\},"action":"(?:snapshot|update)","data":\[\{"asks":' + _LEVELS + rb',"bids":' + _LEVELS
            + rb',"ts":"\d++","checksum":-?\d++(?:,"prevSeqId":-?\d++,"seqId":-?\d++)?+\}\]\}\r?'
        ).fullmatch
    return rx


_SAFE_NAME = re.compile(r"[\x20-\x7e]*\Z")


def _prefix(inst_id: str, channel: str) -> bytes | None:
    """The literal start of a push line in OKX's layout, for the compiled reader (None: names it does not read)."""
    if not (_SAFE_NAME.match(inst_id) and _SAFE_NAME.match(channel)) or '"' in inst_id + channel or "\\" in inst_id + channel:
        return None
    return b'{"arg":{"channel":"' + channel.encode() + b'","instId":"' + inst_id.encode() + b'"},"action":"'


def _known(doc: Any, line_no: int) -> list[Push]:
    """A push whose line matched :func:`_shape`: nothing is left to check."""
    item = doc["data"][0]
    return [Push(line_no, doc["action"] == "snapshot", int(item["ts"]), item["bids"], item["asks"], item["checksum"],
                 item.get("seqId"), item.get("prevSeqId"))]


def parse_line(line: bytes, line_no: int, inst_id: str, channel: str) -> list[Push] | str | None:
    """The pushes of one line; a reason (str) for a bad line; ``None`` for a line skipped without a reject."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if not line.strip():
            return "empty line"
        return f"not valid JSON ({exc.args[0].split(':')[0]})"
    try:
        if _shape(inst_id, channel)(line) is not None:
            return _known(doc, line_no)
        return _fast(doc, line_no, inst_id, channel)
    except Exception:  # noqa: BLE001 - any surprise goes to the careful path below
        pass
    if not isinstance(doc, dict):
        return "not a JSON object"
    arg = doc.get("arg")
    if "event" in doc and "data" not in doc:
        return None  # subscribe/unsubscribe/error acknowledgements of the socket
    if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
        return "no \"arg\": {\"channel\", \"instId\"} (not an OKX WebSocket push)"
    if arg["channel"] != channel:
        return None
    if arg.get("instId") != inst_id:
        return f"a push for {arg.get('instId')!r} in the folder of {inst_id}"
    data = doc.get("data")
    if not isinstance(data, list) or not data:
        return "\"data\" is not a non-empty list"
    action = doc.get("action")
    if channel in SNAPSHOT_ONLY:
        snapshot = True
    elif action in ("snapshot", "update"):
        snapshot = action == "snapshot"
    else:
        return f"\"action\" is {action!r}, expected \"snapshot\" or \"update\""
    out = []
    try:
        for item in data:
            if not isinstance(item, dict):
                raise BadPush("a data item is not an object")
            ts = _int_field(item, "ts", True)
            if ts is None or ts < 0:
                raise BadPush(f"\"ts\" is not a time in epoch milliseconds: {item.get('ts')!r}")
            out.append(Push(
                line_no, snapshot, ts, _levels(item.get("bids", []), "bids"), _levels(item.get("asks", []), "asks"),
                _int_field(item, "checksum", False) or 0, _int_field(item, "seqId", False),
                _int_field(item, "prevSeqId", False),
            ))
    except BadPush as exc:
        return str(exc)
    return out


def parse_chunk(chunk: Chunk, inst_id: str, channel: str) -> ParsedBooks:
    """Every line of a chunk of complete lines, in order (read as the result is iterated)."""
    return ParsedBooks(chunk, inst_id, channel)


