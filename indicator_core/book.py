"""One instrument's L2 order book: levels by price, OKX's checksum, crossed-book test (SPEC section 10).

Each side keeps its levels in a dict ``price -> (px text, sz text)`` and the
prices in a sorted list (bisect), so an update of a few levels costs a few
dict and list operations, whatever the depth.  Prices and sizes are kept as
the exchange sent them: the checksum is computed over those strings, and
exact decimals are made from them only when a minute closes.
"""

from __future__ import annotations

import bisect
import zlib
from decimal import Decimal
from itertools import chain
from typing import Iterator

CHECKSUM_LEVELS = 25


class Side:
    """The levels of one side; ``best first`` means descending for bids, ascending for asks."""

    __slots__ = ("bids", "keys", "levels", "pieces")

    def __init__(self, bids: bool) -> None:
        self.bids = bids
        self.keys: list[Decimal] = []  # ascending; for bids the key is -price, so index 0 is always the best
        self.levels: dict[Decimal, tuple[str, str]] = {}  # key -> (px, sz) as received
        self.pieces: dict[Decimal, str] = {}  # key -> "px:sz", the level's part of the checksum string

    def clear(self) -> None:
        self.keys.clear()
        self.levels.clear()
        self.pieces.clear()

    def set(self, px: str, sz: str, price: Decimal, size_zero: bool) -> None:
        self.update([(px, sz, price, size_zero)])

    def update(self, rows: list[tuple[str, str, Decimal, bool]]) -> None:
        """Set each level ``(px, sz, price, size is zero)``; a zero size removes the level."""
        keys, levels, pieces = self.keys, self.levels, self.pieces
        neg = self.bids
        for px, sz, price, zero in rows:
            key = -price if neg else price
            if zero:
                if levels.pop(key, None) is not None:
                    del pieces[key]
                    del keys[bisect.bisect_left(keys, key)]
                continue
            if key not in levels:
                bisect.insort(keys, key)
            levels[key] = (px, sz)
            pieces[key] = f"{px}:{sz}"

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
        return [lv[k] for k in keys]

    def joined(self, n: int) -> list[str]:
        """``"px:sz"`` of the first ``n`` levels, best first (the checksum's pieces)."""
        return list(map(self.pieces.__getitem__, self.keys[:n]))

    def decimals(self) -> Iterator[tuple[Decimal, Decimal]]:
        """``(price, size)`` as exact decimals, best first (lazily: a reader stops where it wants)."""
        lv = self.levels
        for k in self.keys:
            yield (-k if self.bids else k), Decimal(lv[k][1])


class Book:
    """Both sides of a book."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = Side(True)
        self.asks = Side(False)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply(self, bids: list[tuple[str, str, Decimal, bool]], asks: list[tuple[str, str, Decimal, bool]]) -> None:
        """Set each level ``(px, sz, price, size is zero)``; a zero size removes the level."""
        if bids:
            self.bids.update(bids)
        if asks:
            self.asks.update(asks)

    def crossed(self) -> bool:
        b, a = self.bids.best(), self.asks.best()
        return b is not None and a is not None and b >= a

    def checksum(self) -> int:
        """OKX's CRC-32 of the first 25 levels, ``bid1px:bid1sz:ask1px:ask1sz:...``, as a signed 32-bit int."""
        return _crc(self.bids.joined(CHECKSUM_LEVELS), self.asks.joined(CHECKSUM_LEVELS))

    def to_state(self) -> dict[str, list[list[str]]]:
        return {"bids": [list(t) for t in self.bids.texts()], "asks": [list(t) for t in self.asks.texts()]}

    @classmethod
    def from_state(cls, data: dict[str, list[list[str]]]) -> "Book":
        book = cls()
        for side, rows in ((book.bids, data["bids"]), (book.asks, data["asks"])):
            for px, sz in rows:
                side.set(px, sz, Decimal(px), False)
        return book


def checksum_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """The checksum of levels given best first (at most 25 of each are used)."""
    return _crc([f"{p}:{s}" for p, s in bids[:CHECKSUM_LEVELS]], [f"{p}:{s}" for p, s in asks[:CHECKSUM_LEVELS]])


def _crc(bids: list[str], asks: list[str]) -> int:
    """CRC-32 of ``bid1:ask1:bid2:ask2:...`` (the longer side continuing alone), signed."""
    n = min(len(bids), len(asks))
    parts = chain.from_iterable(zip(bids, asks))
    if len(bids) != len(asks):
        parts = chain(parts, bids[n:] if len(bids) > n else asks[n:])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc
