"""One venue's WebSocket connections, kept open until the recorder stops (SPEC section 20).

Connect and subscribe; every frame to the recorder's handler with its receive
time.  Keepalive: after ``ping_seconds`` without a frame a ping goes out (OKX's
text ``ping``, Bybit's ``{"op":"ping"}`` — Bybit's also every ``ping_seconds``
regardless —, a WebSocket ping for Binance); a connection silent for
``ping_seconds + pong_seconds`` is closed.  A closed connection is reopened
after a backoff of ``backoff_first_seconds`` doubling to
``backoff_max_seconds``, each wait drawn between half and all of it (jitter, so
that many recorders do not reconnect at once); the backoff starts again once a
connection delivers data.

OKX's notice of a coming disconnect (64008): a second connection is opened and
subscribed at once; when it delivers its first push it takes over and the old
one is closed.  While both are open, what both deliver is written once (the
recorder drops repeats by trade id, sequence number or the line itself).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .venues import Frame, Venue


@dataclass(frozen=True)
class Timing:
    ping_seconds: float = 20.0
    pong_seconds: float = 10.0
    backoff_first_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    open_timeout_seconds: float = 10.0


class Events:
    """What a session tells the recorder: frames, and the connection's life (for the logs)."""

    def frame(self, frame: Frame, received_ms: int, overlap: bool) -> None: ...
    def connected(self, venue: Venue, number: int, handover: bool) -> None: ...
    def subscribed(self, venue: Venue, number: int) -> None: ...
    def disconnected(self, venue: Venue, number: int, reason: str, delivered: bool) -> None: ...
    def notice(self, venue: Venue, number: int, text: str) -> None: ...
    def switched(self, venue: Venue, old: int, new: int) -> None: ...
    def malformed(self, venue: Venue, text: str) -> None: ...


class Session:
    """The connections of one venue; :meth:`run` until ``stop`` is set."""

    def __init__(self, venue: Venue, events: Events, timing: Timing, stop: asyncio.Event,
                 rand: Callable[[], float] = random.random) -> None:
        self.venue, self.events, self.timing, self.stop = venue, events, timing, stop
        self.rand = rand
        self.count = 0  # connections opened so far (numbers them in the logs)
        self.successor: asyncio.Task | None = None  # OKX 64008: the connection that takes over
        self.sockets: dict[int, ClientConnection] = {}  # the open connections by number

    async def run(self) -> None:
        failures = 0
        current: asyncio.Task | None = None
        while not self.stop.is_set():
            if current is None:
                current = asyncio.ensure_future(self._connection(None))
            stopping = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait({current, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if self.stop.is_set():
                break
            _, delivered = current.result()
            if self.successor is not None:  # OKX 64008: the new connection goes on, without a wait
                current, self.successor = self.successor, None
                continue
            current = None
            failures = 0 if delivered else failures + 1
            wait = min(self.timing.backoff_max_seconds, self.timing.backoff_first_seconds * 2 ** max(failures - 1, 0))
            wait *= 0.5 + 0.5 * self.rand()
            try:
                async with asyncio.timeout(wait):
                    await self.stop.wait()
            except TimeoutError:
                pass
        for task in (current, self.successor):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the session is over either way
                    pass

    async def _connection(self, replaces: int | None) -> tuple[str, bool]:
        """One connection from open to close (``replaces``: the connection it takes over from, on OKX's 64008
        notice): why it ended, and whether it delivered data."""
        self.count += 1
        number = self.count
        delivered = False
        venue, timing = self.venue, self.timing
        try:
            ws = await connect(venue.ws_url, ping_interval=None, open_timeout=timing.open_timeout_seconds,
                               max_size=2**24, close_timeout=2)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self.events.disconnected(venue, number, f"could not connect: {exc}", False)
            return "failed", False
        self.sockets[number] = ws
        self.events.connected(venue, number, replaces is not None)
        keepalive = None
        try:
            for message in venue.subscriptions():
                await ws.send(message)
            self.events.subscribed(venue, number)
            last = [time.monotonic()]
            keepalive = asyncio.ensure_future(self._keepalive(ws, last))
            while not self.stop.is_set():
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that meets a frame
                    async with asyncio.timeout(timing.ping_seconds + timing.pong_seconds):
                        raw = await ws.recv()
                except TimeoutError:
                    self.events.disconnected(venue, number, "silent past the keepalive", delivered)
                    return "stalled", delivered
                received_ms = int(time.time() * 1000)
                last[0] = time.monotonic()
                frame = venue.parse(raw)
                if frame.what == "data":
                    if not delivered:
                        delivered = True
                        if replaces is not None:  # the hand-over's new connection delivers: it takes over
                            self.events.switched(venue, replaces, number)
                            old = self.sockets.get(replaces)
                            if old is not None:
                                asyncio.ensure_future(old.close())
                    self.events.frame(frame, received_ms, self.successor is not None)
                elif frame.what == "notice":
                    self.events.notice(venue, number, frame.text)
                    if self.successor is None:
                        self.successor = asyncio.ensure_future(self._connection(number))
                elif frame.what == "error":
                    self.events.malformed(venue, frame.text)
            return "stopped", delivered
        except ConnectionClosed as exc:
            why = "replaced by the connection opened on the notice" if self._replaced(number) else f"closed: {exc}"
            self.events.disconnected(venue, number, why, delivered)
            return "closed", delivered
        except OSError as exc:
            self.events.disconnected(venue, number, f"network error: {exc}", delivered)
            return "closed", delivered
        finally:
            self.sockets.pop(number, None)
            if keepalive is not None:
                keepalive.cancel()
            await ws.close()

    def send(self, messages: list[str]) -> None:
        """Send ``messages`` on the newest open connection (a resubscription), if one is open."""
        if self.sockets:
            ws = self.sockets[max(self.sockets)]

            async def go() -> None:
                try:
                    for m in messages:
                        await ws.send(m)
                except ConnectionClosed:
                    pass  # the next connection subscribes anew

            asyncio.ensure_future(go())

    def _replaced(self, number: int) -> bool:
        return self.successor is not None and self.count > number

    async def _keepalive(self, ws: ClientConnection, last: list[float]) -> None:
        """Ping after ``ping_seconds`` without a frame (Bybit: every ``ping_seconds`` as well)."""
        timing, venue = self.timing, self.venue
        sent = time.monotonic()
        step = min(1.0, timing.ping_seconds / 4)
        try:
            while True:
                await asyncio.sleep(step)
                now = time.monotonic()
                idle = now - last[0] >= timing.ping_seconds and now - sent >= timing.ping_seconds
                regular = venue.name == "bybit" and now - sent >= timing.ping_seconds
                if idle or regular:
                    sent = now
                    if venue.ping_text is not None:
                        await ws.send(venue.ping_text)
                    else:
                        await ws.ping()
        except (ConnectionClosed, asyncio.CancelledError):
            return
