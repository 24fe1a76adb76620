"""One instrument's L2 order book: levels by price, OKX's checksum, crossed-book test (SPEC section 10).

Each side keeps its levels in a dict ``key -> "px:sz"`` (the level's part of
the checksum string, as the exchange sent it), the keys in a sorted list
(bisect) and the price texts it holds in a dict ``px -> key``, so an update
of a few levels costs a few dict and list operations, whatever the depth, and
an exact decimal is made only for a price text the side does not hold yet.
The checksum's pieces of the first 25 levels are kept as a list, and the two
sides' pieces interleaved as another: a new size at a level among the first 25
replaces its piece in both in place, a level added or removed there is inserted
into or deleted from its side's list (and only the interleaved list is rebuilt,
from the two lists); exact sizes are made only when a minute closes.

The compiled kernel (``_native_books.c``), where built, does :meth:`Side.update`,
:meth:`Book.checksum` and :meth:`Side.decimals` on these same objects; it hashes
the two sides' first 25 pieces in place, so ``parts`` stays unused on that path.
"""

from __future__ import annotations

import bisect
import zlib
from decimal import Decimal
from typing import Iterator, Sequence

from .. import native

CHECKSUM_LEVELS = 25
_KERNEL = native.load("books")  # update, checksum and decimals in C (None: the pure path below)
_DECIMALS_SLICE = 32  # levels made at once by the kernel's decimals, the first time (then more)


class Side:
    """The levels of one side; ``best first`` means descending for bids, ascending for asks."""

    __slots__ = ("bids", "keys", "levels", "by_text", "top", "parts", "off", "changed")

    def __init__(self, bids: bool) -> None:
        self.bids = bids
        self.keys: list[Decimal] = []  # ascending; for bids the key is -price, so index 0 is always the best
        self.levels: dict[Decimal, str] = {}  # key -> "px:sz" as received
        self.by_text: dict[str, Decimal] = {}  # px text as received -> key
        self.top: list[str] | None = None  # "px:sz" of the first 25 levels; None once a level was added or removed there
        self.parts: list[str] | None = None  # the book's interleaved pieces, while this side's top is at [off::2]
        self.off = 0 if bids else 1
        self.changed = True  # a piece of top changed since the book's checksum

    def clear(self) -> None:
        self.keys.clear()
        self.levels.clear()
        self.by_text.clear()
        self.top = None
        self.parts = None
        self.changed = True

    def update(self, rows: Sequence[Sequence[str]]) -> None:
        """Set each level ``[px, sz, ...]`` (plain decimal strings, price > 0); a zero size removes the level."""
        if _KERNEL is not None and _KERNEL.update(self, rows):
            return
        keys, levels, by_text = self.keys, self.levels, self.by_text
        n = CHECKSUM_LEVELS
        # the first 25 pieces follow each change among them: a new size replaces its piece (in the
        # interleaved pieces too), an added or removed level is inserted or deleted there (the interleaved
        # pieces are then rebuilt from both sides' first 25); a change beyond the 25th key leaves them as they are
        top = self.top
        track = top is not None
        edge = keys[n - 1] if track and len(keys) >= n else None  # a key at or above it is among the first 25
        for lv in rows:
            px = lv[0]
            sz = lv[1]
            key = by_text.get(px)
            if key is None:
                key = Decimal(px)
                if self.bids:
                    key = -key
                old = levels.get(key)  # the same price written another way ("100" and "100.0")
                if old is not None:
                    del by_text[old.partition(":")[0]]
                if not sz.strip("0."):
                    if old is not None:
                        edge = self._remove(key, track, edge)
                    continue
                else:
                    by_text[px] = key
                    piece = levels[key] = f"{px}:{sz}"
                    if old is None:
                        i = bisect.bisect_left(keys, key)
                        keys.insert(i, key)
                        if track:
                            if i < n:
                                top.insert(i, piece)  # type: ignore[union-attr]
                                if len(top) > n:  # type: ignore[arg-type]
                                    top.pop()  # type: ignore[union-attr]
                                self.parts = None
                                self.changed = True
                            edge = keys[n - 1] if len(keys) >= n else None
                        continue
            elif not sz.strip("0."):
                del by_text[px]
                edge = self._remove(key, track, edge)
                continue
            else:
                piece = levels[key] = f"{px}:{sz}"
            if track and (edge is None or key <= edge):
                i = bisect.bisect_left(keys, key)
                top[i] = piece  # type: ignore[index]
                parts = self.parts
                if parts is not None:
                    parts[2 * i + self.off] = piece
                self.changed = True

    def _remove(self, key: Decimal, track: bool, edge: Decimal | None) -> Decimal | None:
        """Delete the level at ``key`` (its price text already forgotten); returns the key of the 25th
        level afterwards when the removal was among the first 25 (tracked), else ``edge`` unchanged."""
        keys, levels, n = self.keys, self.levels, CHECKSUM_LEVELS
        del levels[key]
        i = bisect.bisect_left(keys, key)
        del keys[i]
        if not (track and i < n):
            return edge
        top = self.top
        del top[i]  # type: ignore[union-attr]
        if len(keys) >= n:
            top.append(levels[keys[n - 1]])  # type: ignore[union-attr]
        self.parts = None
        self.changed = True
        return keys[n - 1] if len(keys) >= n else None

    def __len__(self) -> int:
        return len(self.keys)

    def best(self) -> Decimal | None:
        if not self.keys:
            return None
        k = self.keys[0]
        return -k if self.bids else k

    def texts(self, n: int | None = None) -> list[tuple[str, str]]:
        """``(px, sz)`` as received, best first (the first ``n``)."""
        keys = self.keys if n is None else self.keys[:n]
        lv = self.levels
        out = []
        for k in keys:
            px, _, sz = lv[k].partition(":")
            out.append((px, sz))
        return out

    def joined(self, n: int = CHECKSUM_LEVELS) -> list[str]:
        """``"px:sz"`` of the first ``n`` levels, best first (the checksum's pieces)."""
        if n == CHECKSUM_LEVELS:
            top = self.top
            if top is None:
                top = self.top = list(map(self.levels.__getitem__, self.keys[:n]))
            return top
        return list(map(self.levels.__getitem__, self.keys[:n]))

    def decimals(self) -> Iterator[tuple[Decimal, Decimal]]:
        """``(price, size)`` as exact decimals, best first (lazily: a reader stops where it wants)."""
        kernel = _KERNEL
        if kernel is not None:  # made in C, a slice of levels at a time
            start, n = 0, _DECIMALS_SLICE
            while True:
                got = kernel.decimals(self, start, n)
                yield from got
                if len(got) < n:
                    return
                start += n
                n = min(4 * n, 4096)
        lv = self.levels
        for k in self.keys:
            yield (-k if self.bids else k), Decimal(lv[k].partition(":")[2])


class Book:
    """Both sides of a book."""

    __slots__ = ("bids", "asks", "crc", "parts")

    def __init__(self) -> None:
        self.bids = Side(True)
        self.asks = Side(False)
        self.crc: int | None = None  # the checksum of the first 25 levels, while neither side's changed
        self.parts: list[str] | None = None  # bid1, ask1, bid2, ask2, ... (the longer side continuing alone)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.crc = None

    def apply(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        """Set each level ``[px, sz, ...]``; a zero size removes the level."""
        if bids:
            self.bids.update(bids)
        if asks:
            self.asks.update(asks)

    def crossed(self) -> bool:
        b, a = self.bids.keys, self.asks.keys
        return bool(b) and bool(a) and -b[0] >= a[0]

    def checksum(self) -> int:
        """OKX's CRC-32 of the first 25 levels, ``bid1px:bid1sz:ask1px:ask1sz:...``, as a signed 32-bit int."""
        bids, asks = self.bids, self.asks
        if self.crc is None or bids.changed or asks.changed:
            if _KERNEL is not None:  # the pieces are read in place, interleaved as they are hashed
                self.crc = _KERNEL.checksum(bids.joined(), asks.joined())
                bids.changed = asks.changed = False
                return self.crc
            parts = self.parts
            if parts is None or bids.parts is not parts or asks.parts is not parts:
                bt, at = bids.joined(), asks.joined()
                parts = self.parts = _interleave(bt, at)
                # pieces sit at [0::2] and [1::2] only while both sides have as many levels
                bids.parts = asks.parts = parts if len(bt) == len(at) else None
            self.crc = _crc32(parts)
            bids.changed = asks.changed = False
        return self.crc

    def to_state(self) -> dict[str, list[list[str]]]:
        return {"bids": [list(t) for t in self.bids.texts()], "asks": [list(t) for t in self.asks.texts()]}

    @classmethod
    def from_state(cls, data: dict[str, list[list[str]]]) -> "Book":
        book = cls()
        book.bids.update(data["bids"])
        book.asks.update(data["asks"])
        return book


def checksum_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """The checksum of levels given best first (at most 25 of each are used)."""
    return _crc([f"{p}:{s}" for p, s in bids[:CHECKSUM_LEVELS]], [f"{p}:{s}" for p, s in asks[:CHECKSUM_LEVELS]])


def _crc(bids: list[str], asks: list[str]) -> int:
    """CRC-32 of ``bid1:ask1:bid2:ask2:...`` (the longer side continuing alone), signed."""
    return _crc32(_interleave(bids, asks))


def _interleave(bids: list[str], asks: list[str]) -> list[str]:
    """``bid1, ask1, bid2, ask2, ...`` (the longer side continuing alone)."""
    nb, na = len(bids), len(asks)
    n = min(nb, na)
    parts = [""] * (nb + na)
    if nb == na:
        parts[::2] = bids
        parts[1::2] = asks
    else:
        parts[0:2 * n:2] = bids[:n]
        parts[1:2 * n:2] = asks[:n]
        parts[2 * n:] = bids[n:] if nb > n else asks[n:]
    return parts


def _crc32(parts: list[str]) -> int:
    """The signed CRC-32 of the pieces joined with ``:``."""
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc
