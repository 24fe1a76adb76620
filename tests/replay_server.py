"""A venue on 127.0.0.1 for the recorder's tests: recorded frames replayed over WebSocket, REST history, faults.

The server plays a *timeline* of frames (trades, books, derivs pushes of one
venue) in order, whether or not a client is connected: the frames it plays
while no connection is subscribed are lost to the WebSocket, as they would be
on a venue, and only the REST history has their trades.  Faults, each at a
frame number of the timeline:

- ``drop``: the connection is cut (no close frame);
- ``stall``: the connection stays open but sends nothing, and answers no ping;
- ``notice``: OKX's 64008 notice; the old connection goes on for ``overlap`` frames, which a new
  connection delivers too, then it is closed;
- ``malformed``: a frame that is not JSON;
- ``skip``: ``n`` frames are not sent (a hole in the stream itself, with no disconnection);
- ``rest_fail``: the next ``n`` REST requests fail with HTTP 500.

Every frame sent is remembered (``sent``), with the number of the connection
that carried it, so a test can compare the files with what was served.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


@dataclass
class Fault:
    at: int  # the frame number of the timeline where it happens
    kind: str
    n: int = 0  # skip: frames not sent; rest_fail: failing requests; notice: frames both connections send


@dataclass
class Timeline:
    venue: str
    frames: list[bytes]
    faults: list[Fault] = field(default_factory=list)
    interval: float = 0.002  # seconds between frames
    trades: list[dict[str, Any]] = field(default_factory=list)  # REST history: every trade of the timeline
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # Binance depth snapshots by symbol


class ReplayServer:
    """Start with :meth:`start`; ``ws_url`` and ``rest_url`` are the endpoints to configure."""

    def __init__(self, timeline: Timeline, wait_for_client: bool = True) -> None:
        self.t = timeline
        self.wait_for_client = wait_for_client
        self.sent: list[tuple[int, int]] = []  # (frame number, connection number)
        self.connections = 0
        self.rest_requests: list[str] = []
        self.received: list[tuple[int, str]] = []  # (connection, message) of every message a client sent
        self.pings = 0
        self.done = threading.Event()
        self._subscribers: dict[int, Any] = {}  # connection number -> websocket, while subscribed
        self._stalled: set[int] = set()
        self._rest_fail = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._client = None  # asyncio.Event: a first subscription

    # --- life ------------------------------------------------------------------------------
    def start(self) -> "ReplayServer":
        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.rest_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True).start()
        assert self._started.wait(10)
        return self

    def stop(self) -> None:
        self._http.shutdown()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._client = asyncio.Event()
        async with serve(self._serve, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            self.ws_url = f"ws://127.0.0.1:{port}/ws"
            self._started.set()
            play = asyncio.ensure_future(self._play())
            await self._stop.wait()
            play.cancel()

    # --- WebSocket ---------------------------------------------------------------------------
    async def _serve(self, ws) -> None:
        self.connections += 1
        number = self.connections
        try:
            async for message in ws:
                self.received.append((number, message))
                if message in ("ping", '{"op":"ping"}'):
                    self.pings += 1
                    if number not in self._stalled:
                        await ws.send("pong" if message == "ping" else '{"op":"pong","success":true}')
                    continue
                doc = orjson.loads(message)
                await ws.send(self._ack(doc))
                self._subscribers[number] = ws
                self._client.set()
        except ConnectionClosed:
            pass
        finally:
            self._subscribers.pop(number, None)

    def _ack(self, doc: dict[str, Any]) -> bytes:
        if self.t.venue == "binance":
            return orjson.dumps({"result": None, "id": doc.get("id")})
        if self.t.venue == "bybit":
            return orjson.dumps({"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "x"})
        return orjson.dumps({"event": "subscribe", "arg": (doc.get("args") or [{}])[0]})

    async def _send(self, k: int, frame: bytes | str, only: set[int] | None = None) -> None:
        for number, ws in list(self._subscribers.items()):
            if number in self._stalled or (only is not None and number not in only):
                continue
            try:
                await ws.send(frame.decode() if isinstance(frame, bytes) else frame)
                if k >= 0:
                    self.sent.append((k, number))
            except ConnectionClosed:
                self._subscribers.pop(number, None)

    async def _play(self) -> None:
        if self.wait_for_client:
            await self._client.wait()
            await asyncio.sleep(0.05)
        faults = sorted(self.t.faults, key=lambda f: f.at)
        skip_until = -1
        handover: tuple[int, int] | None = None  # (old connection, frame number where it closes)
        for k, frame in enumerate(self.t.frames):
            for f in [f for f in faults if f.at == k]:
                if f.kind == "notice":  # the connection told: closed once the overlap has been played
                    handover = (max(self._subscribers) if self._subscribers else 0, k + f.n)
                await self._fault(f, k)
                if f.kind == "skip":
                    skip_until = k + f.n
            if handover is not None and k >= handover[1]:
                ws = self._subscribers.pop(handover[0], None)
                if ws is not None:
                    await ws.close()
                handover = None
            if k >= skip_until:
                await self._send(k, frame)
            await asyncio.sleep(self.t.interval)
        await asyncio.sleep(0.3)
        self.done.set()

    async def _fault(self, f: Fault, k: int) -> None:
        if f.kind == "drop":
            for number, ws in list(self._subscribers.items()):
                self._subscribers.pop(number, None)
                ws.transport.abort()
        elif f.kind == "stall":
            self._stalled.update(self._subscribers)
        elif f.kind == "notice":
            await self._send(-1, orjson.dumps({"event": "notice", "code": "64008",
                                               "msg": "The connection will soon be closed for a service upgrade."}))
            await asyncio.sleep(0.05)  # the recorder opens its second connection
        elif f.kind == "malformed":
            await self._send(-1, "{not json")
        elif f.kind == "rest_fail":
            self._rest_fail += f.n

    # --- REST ------------------------------------------------------------------------------
    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                server.rest_requests.append(self.path)
                if server._rest_fail > 0:
                    server._rest_fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"code":"50001","msg":"injected failure"}')
                    return
                url = urllib.parse.urlparse(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                body = server._rest(url.path, q)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(orjson.dumps(body) if body is not None else b"{}")

        return Handler

    def _rest(self, path: str, q: dict[str, str]) -> Any:
        trades = self.t.trades
        if path == "/api/v5/market/history-trades":
            inst, limit = q["instId"], int(q.get("limit", "100"))
            after = int(q["after"]) if "after" in q else None
            mine = [t for t in trades if t["instId"] == inst and (after is None or int(t["tradeId"]) < after)]
            mine.sort(key=lambda t: -int(t["tradeId"]))
            return {"code": "0", "msg": "", "data": mine[:limit]}
        if path == "/fapi/v1/aggTrades":
            symbol, limit, from_id = q["symbol"], int(q.get("limit", "500")), int(q.get("fromId", "0"))
            mine = sorted((t for t in trades if t["s"] == symbol and t["a"] >= from_id), key=lambda t: t["a"])
            return [{k: t[k] for k in ("a", "p", "q", "f", "l", "T", "m")} for t in mine[:limit]]
        if path == "/fapi/v1/depth":
            return self.t.snapshots.get(q["symbol"])
        return None


def okx_trade_frames(inst: str, n: int, first_id: int = 1000, t0: int | None = None, per_push: int = 1,
                     step_ms: int = 37) -> tuple[list[bytes], list[dict[str, Any]]]:
    """``n`` OKX trades of ``inst`` in pushes of ``per_push`` trades, ids consecutive, from ``t0`` (a minute ago
    by default: the recorder fetches no older history than ``backfill_max_minutes``); and the REST items."""
    t0 = int(time.time() * 1000) - 60_000 if t0 is None else t0
    frames, rest = [], []
    for k in range(0, n, per_push):
        data = []
        for j in range(k, min(n, k + per_push)):
            item = {"instId": inst, "tradeId": str(first_id + j), "px": f"{95000 + (j % 50) / 10:.1f}",
                    "sz": str(1 + j % 7), "side": "buy" if j % 3 else "sell", "ts": str(t0 + step_ms * j), "count": "1"}
            data.append(item)
            rest.append({k2: v for k2, v in item.items() if k2 != "count"} | {"source": "0"})
        frames.append(orjson.dumps({"arg": {"channel": "trades", "instId": inst}, "data": data}))
    return frames, rest
