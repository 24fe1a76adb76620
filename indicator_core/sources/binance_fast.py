"""The fast path for Binance trade lines: a file's lines share one layout, read column-wise with numpy.

A recorder writes every ``aggTrade`` (or raw ``trade``) event of a symbol the
same way, bare or inside the combined stream's wrapper.  The layout is learned
from one line (:func:`learn_layout`): the wrapper, the event type, the symbol
and a raw trade's ``"X":"MARKET"`` are part of the literal runs; ``a``/``t``
and ``T`` are integers, ``p`` and ``q`` decimals, ``m`` the maker flag,
``E``, ``f`` and ``l`` ignored numbers.  Every line that fits it in every byte
is read by :func:`indicator_core.sources.columnar.parse_with_layout`; any other
line (another layout, an ``X`` other than ``MARKET``, a bad value) goes to the
reference reader (:mod:`.binance`), so both give the same result on every input.
"""

from __future__ import annotations

import orjson

from . import binance
from .columnar import Layout, parse_with_layout
from .parsed import ColumnBuilder, ParsedChunk
from .parsed import line_ends as find_line_ends
from .timecheck import TimeWindow

# how each key of an event is read: its canonical column and the kind of value
_KEYS = {"aggTrade": {"a": ("tradeId", "int"), "T": ("ts", "int"), "p": ("px", "dec"), "q": ("sz", "dec"),
                      "m": ("side", "maker"), "E": ("E", "skip_digits"), "f": ("f", "skip_digits"),
                      "l": ("l", "skip_digits")},
         "trade": {"t": ("tradeId", "int"), "T": ("ts", "int"), "p": ("px", "dec"), "q": ("sz", "dec"),
                   "m": ("side", "maker"), "E": ("E", "skip_digits")}}
_FIXED = ("e", "s", "X")  # values that are the same on every line of the file: part of the literal runs
_WRAPPER = b'{"stream":"'


def _spans(obj_bytes: bytes) -> list[tuple[str, int, int]] | None:
    """``(key, start, end)`` of each value of a flat object of strings, digits and true/false, or ``None``."""
    n, i, out = len(obj_bytes), 1, []
    if not obj_bytes.startswith(b"{") or not obj_bytes.endswith(b"}"):
        return None
    while i < n:
        if obj_bytes[i:i + 1] != b'"':
            return None
        end = obj_bytes.find(b'"', i + 1)
        key = obj_bytes[i + 1:end].decode("ascii", "replace")
        if end < 0 or obj_bytes[end + 1:end + 2] != b":":
            return None
        j = end + 2
        if obj_bytes[j:j + 1] == b'"':
            close = obj_bytes.find(b'"', j + 1)
            if close < 0 or b"\\" in obj_bytes[j + 1:close]:
                return None
            out.append((key, j + 1, close))
            k = close + 1
        else:
            k = j
            while k < n and obj_bytes[k:k + 1] not in (b",", b"}"):
                k += 1
            value = obj_bytes[j:k]
            if not (value.isdigit() or value in (b"true", b"false")):
                return None
            out.append((key, j, k))
        if obj_bytes[k:k + 1] == b",":
            i = k + 1
            continue
        return out if k == n - 1 else None
    return None


def learn_layout(line: bytes, symbol: str) -> Layout | None:
    """The layout of one event line (without its ``\\n``), or ``None`` if it is not a plain trade event of ``symbol``."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    offset = 0
    if isinstance(doc, dict) and "stream" in doc and "data" in doc:
        start = line.find(b'"data":')
        if not line.startswith(_WRAPPER) or start < 0 or not line.endswith(b"}}"):
            return None
        offset = start + len(b'"data":')
        body, doc = line[offset:-1], doc["data"]
    else:
        body = line
    if not isinstance(doc, dict) or doc.get("s") != symbol or doc.get("e") not in _KEYS:
        return None
    if doc["e"] == "trade" and doc.get("X", "MARKET") != "MARKET":
        return None
    keys = _KEYS[doc["e"]]
    spans = _spans(body)
    if spans is None or len(spans) != len(doc) or not all(k in keys or k in _FIXED for k, *_ in spans):
        return None
    if {"tradeId", "ts", "px", "sz", "side"} - {keys[k][0] for k, *_ in spans if k in keys}:
        return None
    literals, fields, kinds, pos = [], [], [], 0
    for key, a, b in spans:
        if key in _FIXED:
            continue
        field, kind = keys[key]
        literals.append(line[pos:offset + a])
        fields.append(field)
        kinds.append(kind)
        pos = offset + b
    literals.append(line[pos:])
    if any(b"," not in lit for lit in literals[1:-1]):
        return None
    return Layout(tuple(literals), tuple(fields), tuple(kinds))


def parse_chunk(buf: bytes, first_line_no: int, symbol: str, window: TimeWindow | None = None,
                line_ends=None) -> ParsedChunk:
    """The same as :func:`binance.parse_lines`; the lines in the chunk's layout read column-wise."""
    buf = bytes(buf)
    if len(buf) < 16 or buf[-1] != 0x0A:
        return binance.parse_lines(buf, first_line_no, symbol, window)
    if line_ends is None:
        line_ends = find_line_ends(buf)
    first_end = int(line_ends[0])
    layout = learn_layout(buf[:first_end], symbol)
    if layout is None:
        return binance.parse_lines(buf, first_line_no, symbol, window)
    stream: binance.Stream = "aggTrade" if b'"e":"aggTrade"' in buf[:first_end] else "trade"
    skipped = [0]

    def slow_line(out: ColumnBuilder, raw: bytes, line_no: int) -> None:
        one = binance.BinanceBuilder(stream)
        binance.parse_line(one, raw, line_no, symbol, window)
        skipped[0] += one.skipped
        for name in ("ts", "trade_id", "count", "is_buy", "px_m", "px_s", "sz_m", "sz_s", "rejects"):
            getattr(out, name).extend(getattr(one, name))

    got = parse_with_layout(buf, first_line_no, line_ends, layout, slow_line, window)
    got.skipped = skipped[0]
    got.id_space = stream
    return got
