"""One instrument's trades across reconnects and holes: nothing lost that the venue still has, nothing twice.

A venue with consecutive integer trade ids (OKX, Binance) shows a hole as a push
whose first id is more than one past the last id written: after a reconnect, a
restart (the last id is read back from the files), or trades the stream itself
skipped.  The push is then held, with every push after it, while the trades of
the hole are fetched from the venue's REST history; they are written in id
order, then the held pushes.  Trades already written (a repeated push, the
overlap of two connections) are dropped: a push that holds only such trades is
not written, one that holds some is written without them.  What the history did
not return is a ``gap`` in ``recorder.jsonl``.

Bybit's ids are text: a repeat is dropped by id (the ids of the last pushes are
kept), and a reconnect's hole cannot be found by id, so it is logged with its
times as ``unfilled``.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import orjson

from .venues import Frame

Write = Callable[[bytes, int | None], None]  # a line and its exchange time
Log = Callable[..., None]  # event name, fields


class Tape:
    """Trades with consecutive integer ids: see the module's docstring."""

    def __init__(self, label: str, last: tuple[int, int] | None, write: Write, log: Log) -> None:
        self.label = label
        self.last_id = last[0] if last is not None else None
        self.last_ts = last[1] if last is not None else None
        self.write, self.log = write, log
        self.held: list[Frame] = []
        # the hole being fetched: (after_id, before_id), before_id None for "up to now" (after a reconnect)
        self.filling: tuple[int, int | None] | None = None
        self.dropped = 0  # trade records already written, not written again

    def offer(self, frame: Frame) -> tuple[int, int | None] | None:
        """A live push.  Written at once, or held: the hole ``(after_id, before_id)`` to fetch is returned when
        this push opened one (the caller fetches it and calls :meth:`filled`)."""
        if self.filling is not None:
            self.held.append(frame)
            return None
        first = _first(frame)
        if self.last_id is not None and first > self.last_id + 1:
            self.filling = (self.last_id, first)
            self.held.append(frame)
            return self.filling
        self._write(frame)
        return None

    def reconnected(self) -> tuple[int, None] | None:
        """A new connection (or the recorder's start): the trades since the last one written are fetched before
        the live ones are written (``(after_id, None)``: up to now)."""
        if self.last_id is None or self.filling is not None:
            return None
        self.filling = (self.last_id, None)
        return self.filling  # type: ignore[return-value]

    def covered(self) -> bool:
        """Whether the pushes held since the hole opened fill it by themselves (two connections overlapping,
        one a little behind the other): then nothing needs fetching."""
        if self.filling is None or self.filling[1] is None:
            return False
        expect = self.filling[0] + 1
        for first, last in sorted((_first(f), max(b for _, b in f.trade_ids)) for f in self.held):
            if first > expect:
                break
            expect = max(expect, last + 1)
        return expect > self.filling[1]

    def filled(self, lines: list[bytes], ids: list[tuple[int, int]], requests: int,
               error: str | None) -> tuple[int, int | None] | None:
        """The hole's trades (in id order) as fetched, or the error that stopped the fetch; the held pushes go
        out after them, in id order.  Returns the next hole, if a held push opens one."""
        assert self.filling is not None
        after, before = self.filling
        self.filling = None
        got = 0
        for line, (tid, ts) in zip(lines, ids):
            if self.last_id is None or tid > self.last_id:
                self.write(line, ts)
                self.last_id, self.last_ts = tid, ts
                got += 1
        if requests or error:
            self.log("backfill", after_id=str(after), before_id=None if before is None else str(before), trades=got,
                     requests=requests, **({"error": error} if error else {}))
        lowest = ids[0][0] if ids else None
        if before is not None:
            missing = (before - after - 1) - got
        else:  # up to now: what the history did not return below its oldest trade; the rest the live pushes show
            missing = lowest - after - 1 if lowest is not None else 0
        if missing > 0:
            self.log("gap", after_id=str(after), before_id=str(before if before is not None else lowest),
                     missing=missing,
                     reason=error or "the venue's history did not return them (older than backfill_max_minutes?)")
            if before is not None:
                self.last_id = max(self.last_id or after, before - 1)  # the live pushes go on from the hole's end
        held, self.held = sorted(self.held, key=_first), []
        for k, frame in enumerate(held):
            hole = self.offer(frame)
            if hole is not None:
                self.held.extend(held[k + 1:])
                return hole
        return None

    def _write(self, frame: Frame) -> None:
        last = self.last_id
        ids = frame.trade_ids
        if last is not None and any(b <= last for _, b in ids):
            keep = [k for k, (_, b) in enumerate(ids) if b > last]
            self.dropped += len(ids) - len(keep)
            if not keep:
                return
            line = _without(frame, keep)
        else:
            line = frame.line
        self.write(line, frame.exchange_ms)
        self.last_id = max(b for _, b in ids)
        self.last_ts = frame.exchange_ms


def _first(frame: Frame) -> int:
    return min(a for a, _ in frame.trade_ids)


def _without(frame: Frame, keep: list[int]) -> bytes:
    """The push with only the trade records at ``keep`` (OKX: several trades a push)."""
    doc: Any = frame.doc
    data = doc["data"] if isinstance(doc.get("data"), list) else None
    if data is None:
        return frame.line
    return orjson.dumps({**doc, "data": [data[k] for k in keep]})


class RecentIds:
    """Bybit: the ids of the last trades written; a push's trades already among them are not written again."""

    def __init__(self, label: str, write: Write, keep: int = 50_000) -> None:
        self.label, self.write = label, write
        self.order: deque[str] = deque()
        self.seen: set[str] = set()
        self.keep = keep
        self.dropped = 0

    def offer(self, frame: Frame) -> None:
        data = frame.doc.get("data") if isinstance(frame.doc, dict) else None
        if not isinstance(data, list):
            self.write(frame.line, frame.exchange_ms)
            return
        ids = [str(d.get("i")) if isinstance(d, dict) else "" for d in data]
        keep = [k for k, i in enumerate(ids) if i not in self.seen]
        self.dropped += len(ids) - len(keep)
        if not keep:
            return
        line = frame.line if len(keep) == len(ids) else orjson.dumps({**frame.doc, "data": [data[k] for k in keep]})
        self.write(line, frame.exchange_ms)
        for k in keep:
            self.order.append(ids[k])
            self.seen.add(ids[k])
        while len(self.order) > self.keep:
            self.seen.discard(self.order.popleft())
