"""The recorder: every venue of ``[record]`` connected, every push written, until stopped (SPEC section 20)."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from ..config import Config
from ..errors import ConfigError
from ..timeutil import iso_ms
from .connection import Events, Session, Timing
from .files import TRADE_ID_READERS, RawFiles, last_trade
from .log import RecorderLog
from .tape import RecentIds, Tape
from .venues import VENUES, Binance, Frame, Okx, Target, Venue

REST_ATTEMPTS = 3  # a failed REST request is tried again this many times in all, after 0.5 s, then 1 s
REST_TIMEOUT = 15.0
HANDOVER_GRACE = 0.25  # seconds a hole waits, while two connections overlap, for the other one to deliver it


async def get_json(url: str) -> Any:
    """GET ``url``, its JSON reply; tried :data:`REST_ATTEMPTS` times (the last error is raised)."""
    error: Exception | None = None
    for attempt in range(REST_ATTEMPTS):
        if attempt:
            await asyncio.sleep(0.5 * attempt)
        try:
            return await asyncio.to_thread(_get, url)
        except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
            error = exc
    assert error is not None
    raise error


def _get(url: str) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "indicator-core-recorder"})
    with urllib.request.urlopen(request, timeout=REST_TIMEOUT) as reply:  # noqa: S310 - the configured endpoints
        return orjson.loads(reply.read())


@dataclass
class Counts:
    """What the status line shows."""

    frames: int = 0
    lines: int = 0
    backfilled: int = 0
    gaps: int = 0
    reconnects: int = 0
    dropped: int = 0
    delays_ms: list[float] = field(default_factory=list)  # receive-to-disk, a sample for the benchmark


class Recorder(Events):
    """Everything of one ``[record]`` table; :meth:`run` until ``stop`` is set."""

    def __init__(self, vault: Path, cfg: Config, get: Callable[[str], Any] = get_json,
                 keep_delays: bool = False) -> None:
        rec = cfg.record
        if not rec.instruments:
            raise ConfigError(f"{cfg.source}: [record] instruments is empty: name what to record, e.g. "
                              'instruments = ["okx/perps/BTC-USDT-SWAP", "binance/perps/BTCUSDT"]')
        self.vault, self.cfg, self.get = vault, cfg, get
        self.keep_delays = keep_delays
        self.log = RecorderLog(vault)
        roots = {"trades": cfg.input.root, "books": cfg.books.root, "derivs": cfg.derivs.root}
        self.files = RawFiles(vault, roots, rec.fsync_seconds,
                              on_repair=lambda label, path, n: self.log.event(
                                  label, "repaired", file=path.name, dropped_bytes=n,
                                  why="its last line was cut (a crash mid-write): cut back to the last whole line"))
        self.counts = Counts()
        self.timing = Timing(rec.ping_seconds, rec.pong_seconds, rec.backoff_first_seconds, rec.backoff_max_seconds)
        endpoints = rec.endpoints.model_dump()
        by_venue: dict[str, list[Target]] = {}
        for label in rec.instruments:
            channels = tuple(rec.channels_of.get(label, rec.channels))
            by_venue.setdefault(label.split("/")[0], []).append(Target(label, channels))
        self.venues: list[Venue] = []
        for name, targets in by_venue.items():
            if name == "okx":
                self.venues.append(Okx(targets, endpoints, self._liquidation_label(targets), rec.okx_book_channel))
            else:
                self.venues.append(VENUES[name](targets, endpoints))
        self.tapes: dict[str, Tape | RecentIds] = {}
        self.labels_of: dict[str, list[str]] = {v.name: [t.label for t in v.targets] for v in self.venues}
        self.books_seq: dict[str, int] = {}  # label -> the last book sequence number written (overlaps)
        self.last_book_ms: dict[str, int] = {}  # label -> the exchange time of the last book push written
        self.book_last: dict[str, int | None] = {}  # label -> the sequence number the next books push chains to
        self.recent_lines: dict[str, set[bytes]] = {}  # label -> lines written while two connections overlap
        self.snapshots_due: set[str] = set()  # Binance: book labels that want a REST snapshot
        self.tasks: set[asyncio.Task] = set()
        self.sessions: list[Session] = []
        self.disconnected_ms: dict[str, int] = {}  # venue -> when its connection was lost (Bybit's unfilled holes)

    def _liquidation_label(self, targets: list[Target]) -> str | None:
        """The folder of OKX's liquidation-orders feed: the first of ``[derivs] liquidations_from`` recorded here,
        else the first OKX instrument with the derivs channel (the README says to name it there)."""
        with_derivs = [t.label for t in targets if "derivs" in t.channels]
        named = [label for label in self.cfg.derivs.liquidations_from if label in with_derivs]
        return (named or with_derivs or [None])[0]

    # --- the tapes -------------------------------------------------------------------
    def _tape(self, venue: Venue, label: str) -> Tape | RecentIds:
        tape = self.tapes.get(label)
        if tape is None:
            def write(line: bytes, ms: int | None, label: str = label) -> None:
                self._write("trades", label, line, ms)

            if venue.int_ids:
                last = last_trade(self.files.folder("trades", label), TRADE_ID_READERS[venue.name])
                tape = Tape(label, last, write, lambda event, **f: self._event(label, event, **f))
            else:
                tape = RecentIds(label, write)
            self.tapes[label] = tape
        return tape

    def _write(self, kind: str, label: str, line: bytes, ms: int | None) -> None:
        self.files.append(kind, label, ms, line)
        self.counts.lines += 1

    def _event(self, label: str, event: str, **fields: Any) -> None:
        if event == "backfill":
            self.counts.backfilled += int(fields.get("trades", 0))
        elif event == "gap":
            self.counts.gaps += 1
        self.log.event(label, event, **fields)

    # --- Events: what the sessions report ------------------------------------------------
    def frame(self, frame: Frame, received_ms: int, overlap: bool) -> None:
        self.counts.frames += 1
        label, kind = frame.label, frame.kind
        if frame.exchange_ms is not None:
            self.log.delay(label, received_ms, frame.exchange_ms)
        venue = self._venue_of(label)
        if kind == "trades":
            tape = self._tape(venue, label)
            if isinstance(tape, Tape):
                hole = tape.offer(frame)
                if hole is not None:
                    self._spawn(self._fill(venue, tape, hole))
            else:
                tape.offer(frame)
        elif overlap and not self._first_time(label, kind, frame):
            self.counts.dropped += 1
            return
        else:
            if kind == "books":
                if frame.seq is not None:
                    self.books_seq[label] = frame.seq
                if frame.exchange_ms is not None:
                    self.last_book_ms[label] = frame.exchange_ms
                self._book_chain(venue, label, frame)
            self._write(kind, label, frame.line, frame.exchange_ms)
            if kind == "books" and label in self.snapshots_due:
                self.snapshots_due.discard(label)
                self._spawn(self._snapshot(venue, label))
        if self.keep_delays:
            self.counts.delays_ms.append(time.time() * 1000 - received_ms)
        self.files.maybe_sync()

    def _book_chain(self, venue: Venue, label: str, frame: Frame) -> None:
        """A books push that does not chain to the one before: a sequence gap, logged, and a new snapshot asked
        for (a resubscription; Binance: a REST snapshot) so that the book is whole again from there."""
        last, why = venue.book_step(frame, self.book_last.get(label))
        self.book_last[label] = last
        if why is None:
            return
        self._event(label, "gap", channel="books", reason=f"a push lost: {why}; a new snapshot is asked for")
        if isinstance(venue, Binance):
            self.snapshots_due.add(label)
        else:
            for session in self.sessions:
                if session.venue is venue:
                    session.send(venue.resubscribe_books(label.split("/")[2]))

    def _first_time(self, label: str, kind: str, frame: Frame) -> bool:
        """While two connections overlap: whether this push is new (books by sequence number, others by line)."""
        if kind == "books" and frame.seq is not None:
            return frame.seq > self.books_seq.get(label, -1)
        seen = self.recent_lines.setdefault(label, set())
        if frame.line in seen:
            return False
        seen.add(frame.line)
        if len(seen) > 10_000:
            seen.clear()
        return True

    def _venue_of(self, label: str) -> Venue:
        name = label.split("/")[0]
        return next(v for v in self.venues if v.name == name)

    def connected(self, venue: Venue, number: int, handover: bool) -> None:
        for label in self.labels_of[venue.name]:
            self.log.event(label, "connect", url=venue.ws_url, connection=number,
                           **({"handover": True} if handover else {}))
        if not handover:  # a new connection's books start from a snapshot: no chain to the old one's
            for t in venue.targets:
                self.book_last.pop(t.label, None)
        if not handover:  # the trades since the last one written come first (on start too: read back from the files)
            for t in venue.targets:
                tape = self._tape(venue, t.label) if "trades" in t.channels else None
                if isinstance(tape, Tape) and (hole := tape.reconnected()) is not None:
                    self._spawn(self._fill(venue, tape, hole))
        if isinstance(venue, Binance):  # the books resynchronise on a REST snapshot fetched after the first update
            self.snapshots_due.update(t.label for t in venue.targets if "books" in t.channels)
        lost = self.disconnected_ms.pop(venue.name, None)
        if lost is not None and not venue.int_ids:
            for t in venue.targets:
                if "trades" in t.channels:
                    self._event(t.label, "unfilled", since_utc=iso_ms(lost), connection=number,
                                reason="Bybit's trade ids are text: the trades of a disconnection cannot be fetched by id")

    def subscribed(self, venue: Venue, number: int) -> None:
        for label in self.labels_of[venue.name]:
            self.log.event(label, "subscribe", connection=number,
                           channels=list(next(t for t in venue.targets if t.label == label).channels))

    def disconnected(self, venue: Venue, number: int, reason: str, delivered: bool) -> None:
        self.counts.reconnects += 1
        self.disconnected_ms.setdefault(venue.name, int(time.time() * 1000))
        for label in self.labels_of[venue.name]:
            self.log.event(label, "disconnect", connection=number, reason=reason)
        self.files.sync()  # what was received is on disk before the next connection's backfill

    def notice(self, venue: Venue, number: int, text: str) -> None:
        for label in self.labels_of[venue.name]:
            self.log.event(label, "notice", connection=number, code="64008", text=text)

    def switched(self, venue: Venue, old: int, new: int) -> None:
        self.disconnected_ms.pop(venue.name, None)
        for label in self.labels_of[venue.name]:
            self.log.event(label, "switch", old_connection=old, new_connection=new)

    def malformed(self, venue: Venue, text: str) -> None:
        for label in self.labels_of[venue.name]:
            self.log.event(label, "malformed", text=text[:200])

    # --- REST --------------------------------------------------------------------------
    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fill(self, venue: Venue, tape: Tape, hole: tuple[int, int | None] | None) -> None:
        while hole is not None:
            after, before = hole
            if before is not None and any(s.successor is not None for s in self.sessions):
                await asyncio.sleep(HANDOVER_GRACE)  # two connections: the one behind may deliver the hole itself
                if tape.covered():
                    hole = tape.filled([], [], 0, None)
                    continue
            since = int(time.time() * 1000) - self.cfg.record.backfill_max_minutes * 60_000
            error = None
            try:
                lines, ids, requests = await venue.fetch_trades(self.get, tape.label.split("/")[2], after, before, since)
            except Exception as exc:  # noqa: BLE001 - logged as the gap's reason; the live trades go on
                lines, ids, requests, error = [], [], REST_ATTEMPTS, f"{type(exc).__name__}: {exc}"
            hole = tape.filled(lines, ids, requests, error)
            self.files.maybe_sync()

    async def _snapshot(self, venue: Venue, label: str) -> None:
        try:
            line = await venue.book_snapshot(self.get, label.split("/")[2])
        except Exception as exc:  # noqa: BLE001 - the book stays unsynchronised until the next one; logged
            self._event(label, "gap", channel="books", reason=f"the REST snapshot failed: {type(exc).__name__}: {exc}")
            self.snapshots_due.add(label)  # tried again at the next update
            return
        if line is not None:  # into the day file of its own time (the venue's T or E): beside the updates around it
            doc = orjson.loads(line)
            ms = doc.get("T") or doc.get("E") or self.last_book_ms.get(label) or int(time.time() * 1000)
            self._write("books", label, line, int(ms))
            self.log.event(label, "snapshot", channel="books", last_update_id=doc.get("lastUpdateId"))

    # --- running -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        self.sessions = [Session(v, self, self.timing, stop) for v in self.venues]
        runs = [asyncio.ensure_future(s.run()) for s in self.sessions]
        syncing = asyncio.ensure_future(self._sync_timer(stop))
        if ready is not None:
            ready()
        try:
            await asyncio.gather(*runs)
        finally:
            syncing.cancel()
            if self.tasks:  # a backfill under way is finished: its trades are owed to the file
                _, late = await asyncio.wait(set(self.tasks), timeout=REST_TIMEOUT * REST_ATTEMPTS)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late, timeout=1)
            self.close()

    async def _sync_timer(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await asyncio.sleep(self.cfg.record.fsync_seconds)
                self.files.maybe_sync()
        except asyncio.CancelledError:
            return

    def close(self) -> None:
        held = [t for t in self.tapes.values() if isinstance(t, Tape) and t.held]
        for tape in held:  # stopped while a hole was being fetched: the held pushes are written, the hole logged
            while tape.filling is not None:
                tape.filled([], [], 0, "the recorder stopped before the backfill finished")
        self.files.close()
        self.log.close()

    def status(self) -> str:
        c = self.counts
        return (f"record: {c.frames:,} pushes, {c.lines:,} lines written, {c.backfilled:,} trades backfilled, "
                f"{c.gaps} gaps, {c.reconnects} disconnects")
