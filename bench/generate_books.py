"""Generate OKX ``books`` channel recordings: long, realistic and with known defects.

A random-walk mid on a 0.1 tick, up to ``levels`` price levels a side (sparse
near the top, walls every 100 ticks), one push every ``interval_ms``: a few
size changes near the top, levels moving across when the mid moves, levels
falling off the far end.  Pushes carry ``seqId``/``prevSeqId`` (with
heartbeats, and resets where the sequence starts lower) and OKX's CRC-32
``checksum`` of the book after the push (or ``0``, as OKX sends since June 2026).
Injected gaps drop a push (the recorder missed it) and are followed, a few
pushes later, by a new snapshot, as a recorder that resubscribes would write.

    python bench/generate_books.py OUT_FOLDER --minutes 1440 [--no-checksum]

writes ``OUT_FOLDER/books_{date}.jsonl`` files (one per UTC day).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from pathlib import Path
from typing import Iterator

DAY_MS = 86_400_000


def _px(t: int) -> str:
    return str(t // 10) if t % 10 == 0 else f"{t // 10}.{t % 10}"


class _Gen:
    def __init__(self, rng: random.Random, mid_ticks: int, levels: int) -> None:
        self.rng = rng
        self.levels = levels
        self.bb = mid_ticks  # best bid tick; best ask is always above it
        self.ba = mid_ticks + 1
        self.bids: dict[int, str] = {}
        self.asks: dict[int, str] = {}
        t, n = self.bb, 0
        while n < levels:
            if self._present(t):
                self.bids[t] = self._size(t)
                n += 1
            t -= 1
        t, n = self.ba, 0
        while n < levels:
            if self._present(t):
                self.asks[t] = self._size(t)
                n += 1
            t += 1
        self.bids[self.bb] = self._size(self.bb)
        self.asks[self.ba] = self._size(self.ba)

    def _present(self, t: int) -> bool:
        return self.rng.random() < 0.7

    def _size(self, t: int) -> str:
        r = self.rng.random()
        base = int(self.rng.paretovariate(1.3) * 5) + 1
        if t % 100 == 0:
            base *= 60  # a wall at every round 10 price units
        return f"{base}.5" if r < 0.1 else str(base)

    def top(self, side: dict[int, str], start: int, step: int, n: int) -> list[tuple[str, str]]:
        out = []
        t = start
        while len(out) < n and len(out) < len(side):
            sz = side.get(t)
            if sz is not None:
                out.append((_px(t), sz))
            t += step
        return out

    def checksum(self) -> int:
        bids = self.top(self.bids, max(self.bids), -1, 25)
        asks = self.top(self.asks, min(self.asks), 1, 25)
        parts = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts += bids[i]
            if i < len(asks):
                parts += asks[i]
        c = zlib.crc32(":".join(parts).encode())
        return c - (1 << 32) if c >= 1 << 31 else c

    def step(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """Change the book; the levels set, as ``(tick, size)`` (size ``"0"`` removes)."""
        rng = self.rng
        db: dict[int, str] = {}
        da: dict[int, str] = {}
        move = rng.random()
        bb, ba = max(self.bids), min(self.asks)
        if move < 0.1:  # price up: the best ask is taken, a bid steps in above
            del self.asks[ba]
            da[ba] = "0"
            if not self.asks or min(self.asks) > ba + 3:
                self.asks[ba + 1] = da[ba + 1] = self._size(ba + 1)
            nb = min(self.asks) - 1
            if nb not in self.bids:
                self.bids[nb] = db[nb] = self._size(nb)
        elif move < 0.2:  # price down
            del self.bids[bb]
            db[bb] = "0"
            if not self.bids or max(self.bids) < bb - 3:
                self.bids[bb - 1] = db[bb - 1] = self._size(bb - 1)
            na = max(self.bids) + 1
            if na not in self.asks:
                self.asks[na] = da[na] = self._size(na)
        for _ in range(rng.randint(1, 6)):  # size changes near the top
            bid = rng.random() < 0.5
            side, d = (self.bids, db) if bid else (self.asks, da)
            best = max(side) if bid else min(side)
            t = best - rng.randint(0, 40) if bid else best + rng.randint(0, 40)
            if t in side and rng.random() < 0.2 and len(side) > 30 and t != best:
                del side[t]
                d[t] = "0"
            else:
                side[t] = d[t] = self._size(t)
        for side, d, far in ((self.bids, db, min), (self.asks, da, max)):
            while len(side) > self.levels:  # fallen off the far end of the depth
                t = far(side)
                del side[t]
                d[t] = "0"
        return sorted(db.items(), reverse=True), sorted(da.items())


def _levels(rows) -> str:
    return ",".join(f'["{_px(t)}","{sz}","0","{0 if sz == "0" else 1}"]' for t, sz in rows)


def book_lines(
    inst_id: str = "BTC-USDT-SWAP", start_ms: int = 1_723_075_200_000, minutes: float = 10, interval_ms: int = 100,
    levels: int = 400, seed: int = 1, checksums: bool = True, seq: bool = True, gap_every: int = 0,
    reset_every: int = 0, heartbeat_every: int = 0, mid: float = 60000.0, channel: str = "books",
) -> Iterator[tuple[int, bytes]]:
    """``(ts, line)`` of each push, in order.

    ``gap_every``: every that many pushes one is dropped and a snapshot follows
    five pushes later; ``reset_every``: the sequence restarts lower;
    ``heartbeat_every``: a push with no levels and ``seqId == prevSeqId``.
    """
    rng = random.Random(seed)
    g = _Gen(rng, int(mid * 10), levels)
    arg = f'{{"arg":{{"channel":"{channel}","instId":"{inst_id}"}},'
    seq_id = 1000
    ts = start_ms
    end = start_ms + int(minutes * 60_000)
    n = 0
    resync_at = -1

    def snapshot(ts: int, prev: int, sid: int) -> bytes:
        bids = sorted(g.bids.items(), reverse=True)
        asks = sorted(g.asks.items())
        tail = f',"prevSeqId":{prev},"seqId":{sid}' if seq else ""
        return (f'{arg}"action":"snapshot","data":[{{"asks":[{_levels(asks)}],"bids":[{_levels(bids)}],'
                f'"ts":"{ts}","checksum":{g.checksum() if checksums else 0}{tail}}}]}}\n').encode()

    yield ts, snapshot(ts, -1, seq_id)
    while True:
        ts += interval_ms
        if ts >= end:
            return
        n += 1
        if n == resync_at:
            seq_id += 1
            yield ts, snapshot(ts, -1, seq_id)
            continue
        prev = seq_id
        if heartbeat_every and n % heartbeat_every == 0:
            tail = f',"prevSeqId":{prev},"seqId":{prev}' if seq else ""
            yield ts, f'{arg}"action":"update","data":[{{"asks":[],"bids":[],"ts":"{ts}","checksum":{g.checksum() if checksums else 0}{tail}}}]}}\n'.encode()
            continue
        if reset_every and n % reset_every == 0:
            seq_id = rng.randint(1, 50)
        else:
            seq_id += rng.randint(1, 3)
        db, da = g.step()
        tail = f',"prevSeqId":{prev},"seqId":{seq_id}' if seq else ""
        line = (f'{arg}"action":"update","data":[{{"asks":[{_levels(da)}],"bids":[{_levels(db)}],'
                f'"ts":"{ts}","checksum":{g.checksum() if checksums else 0}{tail}}}]}}\n').encode()
        if gap_every and n % gap_every == 0:
            resync_at = n + 5
            continue  # dropped: the recorder missed it
        yield ts, line


def write_days(folder: Path, lines: Iterator[tuple[int, bytes]]) -> list[Path]:
    """Write ``books_{date}.jsonl`` files, one per UTC day."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    fh = None
    day = None
    try:
        for ts, line in lines:
            d = ts // DAY_MS
            if d != day:
                if fh is not None:
                    fh.close()
                day = d
                path = folder / f"books_{time.strftime('%Y-%m-%d', time.gmtime(d * 86400))}.jsonl"
                out.append(path)
                fh = open(path, "wb")
            fh.write(line)
    finally:
        if fh is not None:
            fh.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="instrument folder, e.g. VAULT/raw/books/okx/perps/BTC-USDT-SWAP")
    p.add_argument("--inst", default="BTC-USDT-SWAP")
    p.add_argument("--minutes", type=float, default=1440)
    p.add_argument("--interval-ms", type=int, default=100)
    p.add_argument("--levels", type=int, default=400)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-checksum", action="store_true", help="checksum 0 in every push (OKX since June 2026)")
    p.add_argument("--gap-every", type=int, default=0)
    p.add_argument("--reset-every", type=int, default=0)
    p.add_argument("--heartbeat-every", type=int, default=0)
    a = p.parse_args(argv)
    paths = write_days(a.out, book_lines(
        a.inst, minutes=a.minutes, interval_ms=a.interval_ms, levels=a.levels, seed=a.seed,
        checksums=not a.no_checksum, gap_every=a.gap_every, reset_every=a.reset_every,
        heartbeat_every=a.heartbeat_every,
    ))
    print("\n".join(str(x) for x in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
