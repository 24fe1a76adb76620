"""The fast path for OKX JSON lines: the lines of a chunk that share one layout, parsed column-wise.

An exporter writes every trade the same way: the same keys in the same order,
the same spacing, the same instrument.  Such a line is a fixed sequence of
*literal* byte runs (``{"instId":"BTC-USDT-SWAP","tradeId":"``, ``","px":"``,
..., ``"}``) with *variable* values between them (the digits of ``tradeId``,
``px``, ``sz``, ``ts``, ``count``, the word of ``side``, short values of
fields the project ignores).  The layout is learned from one line of the
chunk; then every line is checked against it and its values are read, all
lines at once, with numpy:

* a value never holds a comma, so the commas of a line (found with one
  ``flatnonzero``) fix where every literal run starts; where every line
  ends as far after its last comma as the first does (OKX's 13-digit
  ``ts``), the line ends are read off the commas too and checked, instead
  of searched for;
* the bytes a line needs around each of those places (a literal run and
  the value before it) are gathered at once, one row of a few words a
  line: numpy's unaligned gather costs about the same per row for 8 bytes
  as for 64, so seven gathers a line instead of twenty-one; each literal
  run is compared eight bytes at a time from those rows;
* digits are checked and converted eight at a time with SWAR arithmetic
  (the simdjson trick), decimal points found the same way; a price or size
  of up to eight characters is read from the one word that ends with it,
  its point squeezed out with shifts.

A line that does not fit the layout in every byte (another layout, a
WebSocket push, a number where a string was expected, a BOM, an escape, a
value with more than 18 digits, a bad or missing field, an empty line) is
handed to the reference parser (:mod:`okx_jsonl`) and its trades or reject
are put back in line order, so both paths give the same result on every
input (tests/test_columnar.py checks that on generated and real lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import orjson

from .. import native
from . import okx_jsonl
from .parsed import LISTED_PER_FILE, ColumnBuilder, LazyKeys, Outside, ParsedChunk, count_lines, splice
from .parsed import line_ends as find_line_ends
from .timecheck import TimeWindow

U64 = np.uint64
_ZEROS = U64(0x3030303030303030)  # eight ASCII '0'
_HIGH_NIBBLES = U64(0xF0F0F0F0F0F0F0F0)
_SIXES = U64(0x0606060606060606)
_ONES = U64(0x0101010101010101)
_TOP_BITS = U64(0x8080808080808080)
_DOTS = U64(0x2E2E2E2E2E2E2E2E)
_THREES = U64(0x3333333333333333)
_ONE = U64(1)
_SCALE_AT = np.array([7, 6, 5, 4, 3, 2, 1, 0, 0], dtype=np.int64)  # a decimal's scale by its point's byte
# _KEEP[k]: a mask of the k highest bytes of a little-endian word (the last k bytes in memory)
_KEEP = np.array([0] + [((1 << 64) - 1) ^ ((1 << (64 - 8 * k)) - 1) for k in range(1, 9)], dtype=np.uint64)
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)
MAX_DIGITS = 18  # every 18-digit mantissa fits an int64
MAX_SKIPPED = 16  # longest value of an ignored field read on the fast path

# how the value of each field of a trade is read
FIELD_KINDS = {"tradeId": "int", "ts": "int", "count": "int", "px": "dec", "sz": "dec", "side": "side"}
_REQUIRED = ("instId", "tradeId", "px", "sz", "side", "ts")
# the value codes of the compiled kernel (_native_trades.c), by field, then by kind
_FIELD_CODES = {"tradeId": 0, "ts": 1, "count": 2, "px": 3, "sz": 4, "side": 5}
# by kind, whatever the field: ignored values, Binance's unquoted `m` (the taker sold when true), Bybit's
# capitalised side, text ids and archive times (seconds with a fraction), an ignored CSV cell
_KIND_CODES = {"skip": 6, "skip_digits": 7, "maker": 8, "Side": 9, "skip_word": 10, "id": 11, "seconds": 12,
               "cell": 13}
_KERNEL = native.load("trades")


def _ID_DIGEST(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    from .bybit import id_keys  # the digest the reference reader gives a Bybit id

    return id_keys(buf, starts, ends)


def _word(lit: bytes) -> U64:
    """The little-endian uint64 of up to eight bytes (missing high bytes are zero)."""
    return U64(int.from_bytes(lit, "little"))


@dataclass(frozen=True)
class Layout:
    """A line as ``literals[0] value[0] literals[1] ... value[r-1] literals[r]``.

    ``kinds[k]`` says how ``value[k]`` is read: a field of :data:`FIELD_KINDS`, or
    ``"skip"``/``"skip_digits"`` for an ignored quoted/unquoted value.
    """

    literals: tuple[bytes, ...]
    fields: tuple[str, ...]
    kinds: tuple[str, ...]

    @property
    def commas(self) -> int:
        return sum(lit.count(b",") for lit in self.literals)

    @property
    def codes(self) -> bytes:
        """The kinds as the compiled kernel's value codes."""
        return bytes(_KIND_CODES[k] if k in _KIND_CODES else _FIELD_CODES[f] for f, k in zip(self.fields, self.kinds))


def csv_layout(columns: Sequence[str], kind_of: Callable[[str], tuple[str, str]], fixed: dict[str, bytes],
               crlf: bool) -> Layout:
    """The layout of a plain CSV row (no quotes) of ``columns``: a column of ``fixed`` is part of the literal
    run (an instrument's name), every other one a value, read as ``kind_of(column)`` says (field, kind)."""
    literals: list[bytes] = []
    fields: list[str] = []
    kinds: list[str] = []
    current = b""
    for k, name in enumerate(columns):
        if k:
            current += b","
        if name in fixed:
            current += fixed[name]
            continue
        field, kind = kind_of(name)
        literals.append(current)
        fields.append(field)
        kinds.append(kind)
        current = b""
    literals.append(current + (b"\r" if crlf else b""))
    return Layout(tuple(literals), tuple(fields), tuple(kinds))


def learn_layout(line: bytes, inst_id: str) -> Layout | None:
    """The layout of ``line`` (without its ``\\n``), or ``None`` if it is not a plain trade object."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("instId") != inst_id:
        return None
    if any(not isinstance(obj.get(k), str) for k in _REQUIRED) or not isinstance(obj.get("count", ""), str):
        return None
    spans = _value_spans(line)
    if spans is None or len(spans) != len(obj):
        return None  # an escape, a nested value, a repeated key: not for the fast path
    literals, fields, kinds = [], [], []
    pos = 0
    for key, start, end, quoted in spans:
        if key == "instId":
            continue  # its value is fixed: part of the literal run around it
        kind = FIELD_KINDS.get(key) or ("skip" if quoted else "skip_digits")
        literals.append(line[pos:start])
        fields.append(key)
        kinds.append(kind)
        pos = end
    literals.append(line[pos:])
    if any(b"," not in lit for lit in literals[1:-1]):
        return None
    return Layout(tuple(literals), tuple(fields), tuple(kinds))


def _value_spans(line: bytes) -> list[tuple[str, int, int, bool]] | None:
    """``(key, start, end, quoted)`` of each top-level value of a flat JSON object of plain strings and digits."""
    n = len(line)
    ws = b" \t\r"
    i = 0
    while i < n and line[i] in ws:
        i += 1
    if i >= n or line[i] != 0x7B:  # '{'
        return None
    i += 1
    out: list[tuple[str, int, int, bool]] = []
    while True:
        while i < n and line[i] in ws:
            i += 1
        if i >= n or line[i] != 0x22:
            return None
        end = line.find(b'"', i + 1)
        if end < 0 or b"\\" in line[i + 1:end]:
            return None
        key = line[i + 1:end].decode("ascii", errors="replace")
        i = end + 1
        while i < n and line[i] in ws:
            i += 1
        if i >= n or line[i] != 0x3A:  # ':'
            return None
        i += 1
        while i < n and line[i] in ws:
            i += 1
        if i < n and line[i] == 0x22:
            end = line.find(b'"', i + 1)
            if end < 0 or b"\\" in line[i + 1:end]:
                return None
            out.append((key, i + 1, end, True))
            i = end + 1
        else:
            start = i
            while i < n and 0x30 <= line[i] <= 0x39:
                i += 1
            if i == start:
                return None  # not a plain unsigned integer
            out.append((key, start, i, False))
        while i < n and line[i] in ws:
            i += 1
        if i < n and line[i] == 0x2C:  # ','
            i += 1
            continue
        if i < n and line[i] == 0x7D:  # '}'
            return out if len({k for k, *_ in out}) == len(out) else None
        return None


class _Lines:
    """One chunk seen as numpy arrays: bytes, unaligned words, and the lines checked so far."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.size = len(buf)
        self.bytes = np.frombuffer(buf, dtype=np.uint8)
        # words[i] holds bytes i .. i+7 (little-endian), read at any byte offset
        self.words = np.ndarray((self.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
        self.last_word = self.size - 8
        self._spans: dict[int, np.ndarray] = {}

    def word_at(self, pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """The words at ``pos``; a position outside the chunk marks its line not ok.

        Every position array handed in here is one offset per line, in line
        order: a line's start, end or comma, or a value bounded by two of
        them, plus a constant.  Such a column never decreases from one line
        to the next, so its first and last entries are its minimum and
        maximum, and the bounds check costs two reads instead of two passes.
        """
        if len(pos) and (pos[0] < 0 or pos[-1] > self.last_word):  # rare: only the chunk's first or last line
            inside = (pos >= 0) & (pos <= self.last_word)
            ok &= inside
            pos = np.where(inside, pos, 0)
        return self.words[pos]

    def span_at(self, pos: np.ndarray, width: int) -> np.ndarray:
        """The ``8 * width`` bytes from each of ``pos`` as rows of ``width`` words, bytes outside the chunk
        read as zero.

        Gathering a run of bytes costs numpy about the same per row whether it is 8 or 64 bytes long
        (an unaligned gather costs its row, not its bytes), so the words a line needs around one place
        are gathered at once and read from the rows (:class:`_Around`).  ``pos`` never decreases
        (see :meth:`word_at`), so only its first and last rows can be outside the chunk.
        """
        n = 8 * width
        view = self._spans.get(n)
        if view is None:
            view = self._spans[n] = np.ndarray((max(self.size - n + 1, 0),), dtype=f"V{n}", buffer=self.buf,
                                               strides=(1,))
        last = self.size - n
        if not len(pos) or (pos[0] >= 0 and pos[-1] <= last):
            return view[pos].view("<u8").reshape(len(pos), width)
        # the rows that reach past either end of the chunk: read from a copy of that end padded with zeros
        low = int(np.searchsorted(pos, 0))
        high = max(int(np.searchsorted(pos, last, side="right")), low)  # (a chunk shorter than a row: none between)
        rows = np.empty((len(pos), n), dtype=np.uint8)
        if high > low:
            rows[low:high] = view[pos[low:high]].view(np.uint8).reshape(high - low, n)
        for part, base in ((slice(0, low), -n), (slice(high, len(pos)), max(last, 0))):
            at = pos[part] - base
            if len(at):
                padded = np.zeros(3 * n, dtype=np.uint8)
                inside = self.bytes[max(base, 0):base + 3 * n]
                padded[max(-base, 0):max(-base, 0) + len(inside)] = inside
                at = np.clip(at, 0, 2 * n)  # a row wholly outside the padded end reads zeros
                rows[part] = padded[at[:, None] + np.arange(n)]
        return rows.view("<u8").reshape(len(pos), width)

    def around(self, anchor: np.ndarray, lo: int, hi: int, ok: np.ndarray) -> "_Around":
        """The words at fixed offsets in ``[lo, hi)`` from ``anchor`` (one position a line), gathered once."""
        return _Around(self, anchor, lo, hi, ok)

    def literal(self, at: "_Around", lit: bytes, ok: np.ndarray) -> None:
        """Mark not ok the lines whose bytes at ``at``'s anchor are not ``lit``.

        A literal shorter than a word is the low bytes of the word that
        begins with it (the bytes after it are the next value's, or the next
        line's, or zeros past the chunk's end: never a literal's bytes).
        """
        m = len(lit)
        if m >= 8:
            for k in [*range(0, m - 7, 8), m - 8]:
                ok &= at(k) == _word(lit[k:k + 8])
        elif m > 0:  # its low m bytes
            ok &= (at(0) & U64((1 << 8 * m) - 1)) == _word(lit)

    def digits(self, length: np.ndarray, before: Callable[[int], np.ndarray],
               ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Value and count of the ``length`` ASCII digits (at most 18) that end where ``before(-d)`` is the word
        ``d`` bytes before their end; anything else is not ok."""
        if not len(length):
            return np.zeros(0, dtype=np.int64), length
        shortest, longest = int(length.min()), int(length.max())
        if shortest < 0 or longest > MAX_DIGITS:
            ok &= (length >= 0) & (length <= MAX_DIGITS)
        value: np.ndarray | None = None
        for g in range(3):
            most = min(max(longest - 8 * g, 0), 8)
            if most == 0:
                break
            w = before(-8 * (g + 1))
            fresh = shortest - 8 * g < 8
            if fresh:  # some value has fewer than 8 digits left: read the bytes before it as '0'
                keep = _KEEP[most] if shortest == longest else _KEEP[np.clip(length - 8 * g, 0, 8)]
                w = w & keep
                w |= _ZEROS & ~keep
            ok &= _all_digits(w)
            part = _swar8(w, in_place=fresh)
            if value is None:
                value = part
            else:
                part *= U64(10 ** (8 * g))
                value += part
        if value is None:
            return np.zeros(len(length), dtype=np.int64), length
        return value.view(np.int64), length

    def decimals(self, start: np.ndarray, end: np.ndarray, at_end: "_Around",
                 ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mantissa, scale)`` of plain decimals in ``[start, end)``, e.g. ``"60000.10"`` -> 6000010, 2.

        A value of at most eight characters (a price or size almost always)
        is read from one word, the one before ``at_end`` (anchored at
        ``end``): the point is found and squeezed out with SWAR arithmetic.
        Longer values take :meth:`_long_decimals`.
        """
        length = end - start
        if not len(length):
            return np.zeros(0, dtype=np.int64), length
        if int(length.min()) >= 1 and int(length.max()) <= 8:
            return self._short_decimals(at_end(-8), length, ok)
        short = (length >= 1) & (length <= 8)
        if not short.any():
            return self._long_decimals(start, end, ok)
        mantissa = np.zeros(len(start), dtype=np.int64)
        scale = np.zeros(len(start), dtype=np.int64)
        w = at_end(-8)
        for rows, read, columns in ((np.flatnonzero(short), self._short_decimals, (w, length)),
                                    (np.flatnonzero(~short), self._long_decimals, (start, end))):
            sub_ok = ok[rows]  # a copy: the reader marks it, then it goes back
            mantissa[rows], scale[rows] = read(*(c[rows] for c in columns), sub_ok)
            ok[rows] = sub_ok
        return mantissa, scale

    @staticmethod
    def _short_decimals(w: np.ndarray, length: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decimals of 1 to 8 characters, each the top ``length`` bytes of its word ``w`` (the one that ends with
        it)."""
        # in place where it can be: a new array each step costs numpy more than the step itself
        keep = _KEEP[length]
        w = w & keep
        np.invert(keep, out=keep)
        keep &= _ZEROS
        w |= keep  # the value in the top bytes, '0' below it
        x = w ^ _DOTS  # the first '.': the lowest byte flagged by _has_byte
        t = x - _ONES
        np.invert(x, out=x)
        t &= x
        t &= _TOP_BITS
        lowest = np.negative(t, out=x)
        lowest &= t  # the first point's top bit alone (0 when there is none)
        has_dot = (t != 0).view(np.uint8).astype(np.uint64)
        at = np.bitwise_count(lowest - _ONE) >> np.uint8(3)  # the point's byte, 8 if none
        below = lowest >> U64(7)
        below -= _ONE  # the bytes before the point (all when there is none)
        lowest <<= _ONE
        lowest -= _ONE
        np.invert(lowest, out=lowest)  # the bytes after it (none when there is none)
        lowest &= w
        below &= w
        below <<= has_dot << U64(3)
        below |= lowest
        has_dot *= U64(0x30)
        below |= has_dot  # the digits, the point squeezed out, '0' in the lowest byte for it
        ok &= _all_digits(below)
        ok &= at != 7  # a second point is not a digit; nothing after the point is an error
        mantissa = _swar8(below, in_place=True).view(np.int64)
        ok &= mantissa > 0
        return mantissa, _SCALE_AT[at]

    def _long_decimals(self, start: np.ndarray, end: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decimals of any length (up to 18 digits), the point searched eight bytes at a time."""
        width = int((end - start).max())
        dot = end.copy()
        for k in range(0, min(width, MAX_DIGITS + 1), 8):
            t = _has_byte(self.word_at(start + k, ok), 0x2E)  # the lowest flagged byte is the first '.'
            lowest = t & (~t + U64(1))
            pos = start + k + (np.bitwise_count(lowest - U64(1)) >> 3).astype(np.int64)
            dot = np.where((t != 0) & (pos < end) & (dot == end), pos, dot)
        has_dot = dot < end
        whole, n_whole = self.digits(dot - start, lambda d: self.word_at(dot + d, ok), ok)
        frac_start = np.where(has_dot, dot + 1, end)
        frac, scale = self.digits(end - frac_start, lambda d: self.word_at(end + d, ok), ok)
        ok &= (~has_dot | (scale >= 1)) & (n_whole + scale >= 1) & (n_whole + scale <= MAX_DIGITS)
        mantissa = whole * _POW10[np.clip(scale, 0, MAX_DIGITS)] + frac
        ok &= mantissa > 0
        return mantissa, scale

    def safe_text(self, length: np.ndarray, before: Callable[[int], np.ndarray], ok: np.ndarray,
                  longest: int = MAX_SKIPPED) -> None:
        """Mark not ok the values of ``length`` bytes (ending where :meth:`digits` says) that are long or hold a
        byte JSON would treat specially."""
        ok &= (length >= 0) & (length <= longest)
        for g in range((longest + 7) // 8):
            n = np.clip(length - 8 * g, 0, 8)
            if not n.any():
                break
            keep = _KEEP[n]
            w = (before(-8 * (g + 1)) & keep) | (U64(0x6161616161616161) & ~keep)  # pad with 'a'
            bad = _has_less(w, 0x20) | _has_more(w, 0x7E) | _has_byte(w, 0x22) | _has_byte(w, 0x5C)
            ok &= bad == 0


class _Around:
    """The words at fixed offsets in ``[lo, hi)`` from one position a line (its *anchor*: a line's start, a
    literal run's start), read from one gather of those bytes (:meth:`_Lines.span_at`); a word outside them
    is gathered on its own (:meth:`_Lines.word_at`)."""

    def __init__(self, lines: _Lines, anchor: np.ndarray, lo: int, hi: int, ok: np.ndarray) -> None:
        self.lines, self.anchor, self.lo, self.ok = lines, anchor, lo, ok
        self.width = (hi - lo + 7) // 8
        self.rows = lines.span_at(anchor + lo, self.width)

    def __call__(self, d: int) -> np.ndarray:
        """The words at ``anchor + d``."""
        k, r = divmod(d - self.lo, 8)
        if k < 0 or k + (r > 0) >= self.width:
            return self.lines.word_at(self.anchor + d, self.ok)
        if r == 0:
            return self.rows[:, k]
        return (self.rows[:, k] >> U64(8 * r)) | (self.rows[:, k + 1] << U64(64 - 8 * r))


def _swar8(w: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Eight ASCII digits (first digit in the lowest byte) as their value (garbage, but no error, where they
    are not digits: callers check them with :func:`_all_digits`); ``in_place`` reuses ``w``."""
    v = np.subtract(w, _ZEROS, out=w) if in_place else w - _ZEROS
    v *= U64(2561)
    v >>= U64(8)
    v &= U64(0x00FF00FF00FF00FF)
    v *= U64(6553601)
    v >>= U64(16)
    v &= U64(0x0000FFFF0000FFFF)
    v *= U64(42949672960001)
    v >>= U64(32)
    return v


def _all_digits(w: np.ndarray) -> np.ndarray:
    """True where all eight bytes of ``w`` are ASCII digits.

    A digit's high nibble is 3, and so is the high nibble of it plus 6; the second check moved to the low
    nibbles, both are one compare.  A byte plus 6 carries into the next one only from 0xFA up, a byte the
    first check already fails.
    """
    t = w + _SIXES
    t &= _HIGH_NIBBLES
    t >>= U64(4)
    t |= w & _HIGH_NIBBLES
    return t == _THREES


def _has_byte(w: np.ndarray, b: int) -> np.ndarray:
    """Nonzero where some byte of ``w`` is ``b``; the lowest flagged byte is exactly the first ``b``
    (a flag above it may be a borrow's false positive)."""
    x = w ^ U64(0x0101010101010101 * b)
    return (x - _ONES) & ~x & _TOP_BITS


def _has_less(w: np.ndarray, b: int) -> np.ndarray:
    """Nonzero where some byte is below ``b`` (bytes are ASCII here or flagged by _has_more)."""
    return (w - U64(0x0101010101010101 * b)) & ~w & _TOP_BITS


def _has_more(w: np.ndarray, b: int) -> np.ndarray:
    """Nonzero where some byte is above ``b`` (``b`` < 128)."""
    return ((w + U64(0x0101010101010101 * (127 - b))) | w) & _TOP_BITS


_HEAD = 1 << 16  # the bytes of a mapped window in which its layout is looked for


def _layout_of(buf: bytes, line_ends: np.ndarray | None, inst_id: str, tries: int = 4) -> Layout | None:
    """The layout of one of the first ``tries`` lines (their ends found here when not given)."""
    if not isinstance(buf, bytes):  # a mapped window: its first lines are enough
        buf, line_ends = bytes(buf[:_HEAD]), None
    start = 0
    for k in range(tries):
        if line_ends is not None:
            if k >= len(line_ends):
                return None
            end = int(line_ends[k])
        else:
            end = buf.find(b"\n", start)
            if end < 0:
                return None
        layout = learn_layout(buf[start:end], inst_id)
        if layout is not None:
            return layout
        start = end + 1
    return None


# the bytes before a literal run read with it: as many as the value before it needs in most chunks (a word a
# short decimal or a side, two an ignored text, three 18 digits); more are gathered on their own
_BEFORE = {"int": 24, "skip_digits": 24, "id": 24, "cell": 24, "skip": 16}


def _span_after(lit: bytes) -> int:
    """The bytes from a literal run's start read with it: its words (the last may overlap the one before)."""
    return 8 * ((max(len(lit), 1) + 7) // 8)


SlowLine = Callable[[ColumnBuilder, bytes, int], None]
"""``slow_line(out, line, line_no)``: the reference parser of one line (without its ``\\n``)."""


def parse_chunk(buf: bytes, first_line_no: int, inst_id: str, line_ends: np.ndarray | None = None,
                window: TimeWindow | None = None, lines: int | None = None) -> ParsedChunk:
    """Parse ``buf``, complete ``\\n``-terminated JSON lines from line ``first_line_no`` on.

    Same result as :func:`okx_jsonl.parse_lines`; the lines that share the
    chunk's layout are read column-wise, the rest by the reference parser.
    ``line_ends`` are the offsets of the line ends and ``lines`` their number, when the caller
    has them. With a ``window``, trades whose ``ts`` is outside it are rejected.
    """
    if not isinstance(buf, bytes) and len(buf) < 16:
        buf = bytes(buf)  # a view of a mapped file too short for the column-wise readers
    if len(buf) < 16 or buf[-1] != 0x0A:
        return okx_jsonl.parse_lines(bytes(buf), first_line_no, inst_id, window)
    layout = _layout_of(buf, line_ends, inst_id)
    if layout is None:
        return okx_jsonl.parse_lines(bytes(buf), first_line_no, inst_id, window)

    def slow_line(out: ColumnBuilder, raw: bytes, line_no: int) -> None:
        okx_jsonl.parse_line(out, raw, line_no, inst_id, window)

    if _KERNEL is not None:  # it finds the line ends itself while it reads the lines, and counts them if need be
        n_lines = len(line_ends) if line_ends is not None else lines
        return _parse_compiled(buf, first_line_no, n_lines, layout, slow_line, window)
    return parse_with_layout(buf, first_line_no, line_ends, layout, slow_line, window, lines=lines)


def parse_counted_lines(buf: bytes, first_line_no: int, n_lines: int, layout: Layout, slow_line: SlowLine,
                        window: TimeWindow | None = None, outside_ok: bool = True) -> ParsedChunk:
    """:func:`parse_with_layout` of ``buf`` known to hold ``n_lines`` lines: the compiled kernel finds where each
    ends as it reads them (numpy, without it, finds them first)."""
    if _KERNEL is not None and n_lines:
        return _parse_compiled(buf, first_line_no, n_lines, layout, slow_line, window, outside_ok)
    return parse_with_layout(buf, first_line_no, None, layout, slow_line, window, outside_ok, lines=n_lines)


def parse_with_layout(buf: bytes, first_line_no: int, line_ends: np.ndarray | None, layout: Layout,
                      slow_line: SlowLine, window: TimeWindow | None = None, outside_ok: bool = True,
                      lines: int | None = None) -> ParsedChunk:
    """The lines of ``buf`` in ``layout`` read column-wise, every other line by ``slow_line``, in line order.

    ``buf`` holds complete lines ending at ``line_ends`` (``lines`` of them; either may be ``None``
    when the caller has not found them).  A line whose ``ts`` is
    outside ``window`` goes to ``slow_line`` (which must apply the same window),
    so that its reject carries the reference parser's reason — unless ``outside_ok``:
    then a line that fits but for its time is kept aside (``ParsedChunk.outside``)
    without the reference, as its reject would say only that (one trade a line).
    The compiled kernel reads every kind; without it (no compiler at install)
    numpy does.
    """
    if _KERNEL is not None and len(buf) >= 16:
        n_lines = len(line_ends) if line_ends is not None else lines  # None: the kernel counts them as it reads
        if n_lines != 0:
            return _parse_compiled(buf, first_line_no, n_lines, layout, slow_line, window, outside_ok)
    if len(buf) < 16:
        return parse_slowly(buf, first_line_no, find_line_ends(buf) if line_ends is None else line_ends, slow_line)
    v = _Lines(buf)
    commas = np.flatnonzero(v.bytes == 0x2C)
    k = layout.commas
    guessed = False  # line ends guessed from the commas and not yet counted: proven below, or counted then
    if line_ends is None:  # found from the commas where they show them, else searched for
        line_ends = _ends_after_commas(v, commas, k, lines)
        guessed = line_ends is not None and lines is None
        if line_ends is None:
            line_ends = find_line_ends(buf)
    n_lines = len(line_ends)
    if n_lines == 0:
        return parse_slowly(buf, first_line_no, line_ends, slow_line)
    starts = _starts(line_ends)
    grid = _one_row_per_line(commas, k, starts, line_ends)
    if grid is None and guessed:  # lines of other shapes: the guesses are counted before any line is read
        if count_lines(v.buf) != n_lines:
            return parse_with_layout(buf, first_line_no, find_line_ends(buf), layout, slow_line, window, outside_ok)
        guessed = False
    if grid is not None:  # the common case: every line has the layout's number of commas
        rows = np.arange(n_lines)
    else:
        per_line = np.diff(np.searchsorted(commas, line_ends), prepend=0)
        fits = per_line == k
        if not fits.any():
            return parse_slowly(buf, first_line_no, line_ends, slow_line)
        rows = np.flatnonzero(fits)
        grid = commas[np.repeat(fits, per_line)].reshape(len(rows), k)
    s, e = starts[rows], line_ends[rows]
    ok = np.ones(len(rows), dtype=bool)

    # where each literal run starts: at the line start, before its first comma, or before the line end; the
    # words a line needs are read around those places, one gather each (the literal run and the value before it)
    lits = layout.literals
    if lits[0]:
        v.literal(v.around(s, 0, _span_after(lits[0]), ok), lits[0], ok)
    value_start = s + len(lits[0])
    cols: dict[str, np.ndarray] = {}
    comma_no = lits[0].count(b",")
    for j, (field, kind) in enumerate(zip(layout.fields, layout.kinds)):
        lit = lits[j + 1]
        if b"," in lit:
            lit_start = grid[:, comma_no] - lit.index(b",")
            comma_no += lit.count(b",")
            if j + 1 == len(lits) - 1:
                ok &= lit_start + len(lit) == e
        else:  # the closing run, e.g. '"}'
            lit_start = e - len(lit)
        at = v.around(lit_start, -_BEFORE.get(kind, 8), _span_after(lit), ok)
        v.literal(at, lit, ok)
        n = lit_start - value_start
        if kind == "int":
            value, n = v.digits(n, at, ok)
            ok &= (n >= 1) & (value > 0)
            cols[field] = value
        elif kind == "dec":
            cols[field], cols[field + "_scale"] = v.decimals(value_start, lit_start, at, ok)
        elif kind == "side":
            w = at(-8)
            is_buy = (n == 3) & ((w >> U64(40)) == _word(b"buy"))
            ok &= is_buy | ((n == 4) & ((w >> U64(32)) == _word(b"sell")))
            cols[field] = is_buy
        elif kind == "maker":  # Binance's unquoted `m`: true when the buyer was the maker, so the taker sold
            w = at(-8)
            sold = (n == 4) & ((w >> U64(32)) == _word(b"true"))
            ok &= sold | ((n == 5) & ((w >> U64(24)) == _word(b"false")))
            cols[field] = ~sold
        elif kind == "Side":  # Bybit's taker side, capitalised
            w = at(-8)
            is_buy = (n == 3) & ((w >> U64(40)) == _word(b"Buy"))
            ok &= is_buy | ((n == 4) & ((w >> U64(32)) == _word(b"Sell")))
            cols[field] = is_buy
        elif kind == "skip_word":  # an ignored true or false
            w = at(-8)
            ok &= ((n == 4) & ((w >> U64(32)) == _word(b"true"))) | ((n == 5) & ((w >> U64(24)) == _word(b"false")))
        elif kind == "id":  # a trade id that is text (Bybit's): its digest, and where it is for the text itself
            ok &= (n >= 1) & (n <= 64)
            v.safe_text(n, at, ok, longest=64)
            cols[field] = _ID_DIGEST(v.bytes, value_start, lit_start)
            cols["key_start"], cols["key_end"] = value_start, lit_start
        elif kind == "seconds":  # seconds with a fraction (Bybit's archives): milliseconds, rounded down
            m, scale = v.decimals(value_start, lit_start, at, ok)
            up = _POW10[np.clip(3 - scale, 0, 3)]
            ok &= m <= np.iinfo(np.int64).max // up
            ms = np.where(scale <= 3, m * np.where(ok, up, 1), m // _POW10[np.clip(scale - 3, 0, 18)])
            ok &= ms > 0
            cols[field] = ms
        elif kind == "cell":  # an ignored CSV cell: printable, no comma or quote, maybe empty
            v.safe_text(n, at, ok, longest=64)
        elif kind == "skip":
            v.safe_text(n, at, ok)
        else:  # "skip_digits": an ignored unquoted number such as a sequence id
            _, n = v.digits(n, at, ok)
            ok &= n >= 1
        value_start = lit_start + len(lit)

    if guessed and not (len(rows) == n_lines and ok.all()):
        # Guessed ends are proven when every line between them fits the layout: a line that fits holds
        # no '\n' (no literal or value does), so the guesses are then all the chunk's line ends.  Short
        # of that, they are counted: a chunk with other line ends is read again from a search for them.
        if count_lines(v.buf) != n_lines:
            return parse_with_layout(buf, first_line_no, find_line_ends(buf), layout, slow_line, window, outside_ok)

    skip = skip_ts = None
    ts = cols["ts"]
    if window is not None and len(ts) and not (int(ts.min()) >= window.lo and int(ts.max()) < window.hi):
        # (a chunk mostly lies all inside its day: two reductions then, no mask)
        inside = window.inside(ts)
        if outside_ok:
            aside = ok & ~inside
            skip, skip_ts = rows[aside], ts[aside]
        ok &= inside
    if len(rows) == n_lines and ok.all():  # the common case: every line read here, the columns as they are
        fast = rows
        picked = cols
    else:
        good = ok.nonzero()[0]
        fast = rows[good]
        picked = {name: col[good] for name, col in cols.items()}
    n_good = len(fast)
    count = picked["count"] if "count" in picked else np.ones(n_good, dtype=np.int64)
    fast_chunk = ParsedChunk(
        ts=picked["ts"], trade_id=picked["tradeId"], count=count, is_buy=picked["side"],
        px_m=picked["px"], px_s=picked["px_scale"], sz_m=picked["sz"], sz_s=picked["sz_scale"],
        rejects=[], lines=n_good,
    )
    if "key_start" in picked:
        fast_chunk.keys = LazyKeys(bytes(buf), picked["key_start"], picked["key_end"])
    if len(fast) == n_lines:
        fast_chunk.lines = n_lines
        return fast_chunk
    chunk = _with_slow_lines(buf, starts, line_ends, fast, fast_chunk, first_line_no, slow_line, skip)
    if skip is not None and len(skip):
        chunk.outside = _outside(buf, starts, line_ends, skip, skip_ts, first_line_no, window)
    return chunk


def _parse_compiled(buf: bytes, first_line_no: int, n_lines: int | None, layout: Layout,
                    slow_line: SlowLine, window: TimeWindow | None, outside_ok: bool = True) -> ParsedChunk:
    """:func:`parse_with_layout` through the compiled kernel: the same lines read, the same columns.

    ``buf`` holds ``n_lines`` complete lines; the kernel finds where each ends as it reads them.  When the
    count is not known (``None``), the kernel counts them as it goes, into columns with room for the lines
    :func:`_room` expects; more lines than that (a stretch of short ones) are counted, then parsed again.
    """
    room = n_lines if n_lines is not None else _room(buf, layout)
    ends = np.empty(room, dtype=np.int64)
    text_ids = "id" in layout.kinds  # two more rows: where each id's text is
    cols = np.empty((9 if text_ids else 7, room), dtype=np.int64)
    is_buy = np.empty(room, dtype=np.uint8)
    ok = np.zeros(room, dtype=np.uint8)
    lo, hi = (window.lo, window.hi) if window is not None else (-(2**63), 2**63 - 1)
    good, walked = _KERNEL.parse_layout(buf, layout.literals, layout.codes, lo, hi, cols, is_buy, ok, ends)
    if walked == room and room and int(ends[-1]) + 1 < len(buf):  # more lines than room (shorter ones than the
        # chunk's head holds, see _room): count them, then parse again
        return _parse_compiled(buf, first_line_no, _KERNEL.count_lines(buf), layout, slow_line, window, outside_ok)
    if walked != room and n_lines is not None:
        raise ValueError(f"buf holds {walked} lines, not {n_lines}")
    if walked != room:
        ends, cols, is_buy, ok = ends[:walked], cols[:, :walked], is_buy[:walked], ok[:walked]
    ts, trade_id, count, px_m, px_s, sz_m, sz_s = cols[:7]
    fast_chunk = ParsedChunk(ts=ts, trade_id=trade_id, count=count, is_buy=is_buy.view(bool), px_m=px_m, px_s=px_s,
                             sz_m=sz_m, sz_s=sz_s, rejects=[], lines=walked)
    if good == walked:
        if text_ids:
            fast_chunk.keys = LazyKeys(bytes(buf), cols[7], cols[8])
        return fast_chunk
    fast = np.flatnonzero(ok == 1)
    skip = np.flatnonzero(ok == 2) if outside_ok else None  # fits but for its time
    picked = ParsedChunk(*(c[fast] for c in (ts, trade_id, count, fast_chunk.is_buy, px_m, px_s, sz_m, sz_s)),
                         rejects=[], lines=len(fast))
    if text_ids:
        picked.keys = LazyKeys(bytes(buf), cols[7][fast], cols[8][fast])
    starts = _starts(ends)
    chunk = _with_slow_lines(buf, starts, ends, fast, picked, first_line_no, slow_line, skip)
    if skip is not None and len(skip):
        chunk.outside = _outside(buf, starts, ends, skip, ts[skip], first_line_no, window)
    return chunk


def _outside(buf, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray, ts: np.ndarray, first_line_no: int,
             window: TimeWindow | None) -> Outside:
    texts = [okx_jsonl.snippet(bytes(buf[int(starts[r]):int(ends[r])])) for r in rows[:LISTED_PER_FILE + 1].tolist()]
    return Outside(rows + first_line_no, ts.copy(), texts, window)


_ROOM_SAMPLE = 1 << 16  # the bytes of a chunk's head whose lines tell how many the chunk holds
_ROOM_MARGIN = 1.1


def _room(buf, layout: Layout) -> int:
    """Rows enough for the lines of ``buf``: as many as its head holds per byte, with a 10% margin.

    At most as many as ``buf`` could hold at the layout's shortest line (its literals, a byte a value).
    That bound alone is ~1.5 times the lines of a day of OKX trades; the rows are live as long as the
    chunk, and glibc, keeping freed memory for reuse (:mod:`indicator_core.command`), keeps them resident.
    """
    most = len(buf) // (sum(map(len, layout.literals)) + 1) + 1
    if len(buf) <= 2 * _ROOM_SAMPLE:
        return most
    head = _KERNEL.count_lines(buf[:_ROOM_SAMPLE])
    return min(most, int(len(buf) * head * _ROOM_MARGIN / _ROOM_SAMPLE) + 64)


def _one_row_per_line(commas: np.ndarray, k: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """The commas as one row of ``k`` per line, if every line holds exactly ``k`` of them (else ``None``).

    Cut into rows of ``k`` in order, the commas fall each into its own line
    exactly when every line holds ``k``: a line with more would push its last
    comma into the next row, before that row's line starts.
    """
    if k == 0 or len(commas) != len(starts) * k:
        return None
    grid = commas.reshape(len(starts), k)
    if (grid[:, 0] >= starts).all() and (grid[:, -1] < ends).all():
        return grid
    return None


def _ends_after_commas(v: _Lines, commas: np.ndarray, k: int, lines: int | None) -> np.ndarray | None:
    """The line ends of a chunk whose lines each hold ``k`` commas and end as many bytes after their last one
    as its first line does (its last value has one width: OKX's 13-digit ``ts``), else ``None``.

    Found this way, the ends cost a look at one byte a line instead of a search of every byte.  Every guess
    must be a line end, and the chunk must hold no other: when ``lines`` are counted, that many; when not
    (``None``), the guesses are returned unproven, and the caller proves them by the lines between them
    (see :func:`parse_with_layout`).
    """
    if k == 0 or not len(commas) or len(commas) % k:
        return None
    first_end = _first_line_end(v)
    if first_end < 0 or int(commas[k - 1]) > first_end:
        return None
    ends = commas[k - 1::k] + (first_end - int(commas[k - 1]))
    if int(ends[-1]) != v.size - 1 or not (v.bytes[ends] == 0x0A).all():
        return None
    return ends if lines is None or lines == len(ends) else None


def _first_line_end(v: _Lines) -> int:
    """Where the chunk's first ``\n`` is (-1: none); ``v.buf`` may be a view of a mapped window."""
    if isinstance(v.buf, bytes):
        return v.buf.find(b"\n")
    at = bytes(v.buf[:_HEAD]).find(b"\n")
    if at < 0 and v.size > _HEAD:  # a line longer than the head: rare
        at = bytes(v.buf).find(b"\n")
    return at


def _starts(line_ends: np.ndarray) -> np.ndarray:
    starts = np.empty(len(line_ends), dtype=np.int64)
    if len(line_ends):
        starts[0] = 0
        starts[1:] = line_ends[:-1] + 1
    return starts


def parse_slowly(buf: bytes, first_line_no: int, line_ends: np.ndarray, slow_line: SlowLine) -> ParsedChunk:
    """Every line of ``buf`` through ``slow_line`` (no layout fits the chunk)."""
    return _with_slow_lines(buf, _starts(line_ends), line_ends, np.zeros(0, dtype=np.int64), ParsedChunk.empty(),
                            first_line_no, slow_line)


def _with_slow_lines(buf: bytes, starts: np.ndarray, line_ends: np.ndarray, fast: np.ndarray,
                     fast_chunk: ParsedChunk, first_line_no: int, slow_line: SlowLine,
                     skip: np.ndarray | None = None) -> ParsedChunk:
    """Parse the lines not in ``fast`` (nor in ``skip``: lines kept aside, no trade) with the reference parser
    and merge both in line order."""
    n_lines = len(line_ends)
    slow = np.ones(n_lines, dtype=bool)
    slow[fast] = False
    if skip is not None:
        slow[skip] = False
    slow_idx = np.flatnonzero(slow)
    builder = ColumnBuilder()
    yielded = np.empty(len(slow_idx), dtype=np.int64)
    for k, i in enumerate(slow_idx.tolist()):
        before = len(builder.ts)
        slow_line(builder, bytes(buf[int(starts[i]):int(line_ends[i])]), first_line_no + i)
        yielded[k] = len(builder.ts) - before
    per_line = np.ones(n_lines, dtype=np.int64)
    per_line[slow_idx] = yielded
    if skip is not None:
        per_line[skip] = 0
    return splice(fast, fast_chunk, slow_idx, builder.build(len(slow_idx)), per_line)
