"""The recorder at the venues' real message rates, against a local server; and `indicators live`'s latency.

    python bench/record.py [--instruments 50] [--seconds 20] [--trades-per-second 5] [--whales 20]

A WebSocket server on 127.0.0.1 plays OKX pushes for ``--instruments`` perpetuals: a ``books``
update every 100 ms per instrument (OKX's rate for the 400-level channel; 8 levels a side, ~650
bytes, as the median update of the real 2022 recording in ../shared/data/okx, 630 bytes) and ``--trades-per-second`` trades per instrument,
each push stamped with the time it is sent.  ``indicators record`` runs in its own process for
``--seconds``; printed: its CPU use (share of one core, sampled after start-up), the median and
99th percentile of receive-to-disk delay (the push received to its line written), the disk it
writes per instrument per day at these rates.  Aims (SPEC 20): < 20 % of one core, median < 5 ms.

Then ``indicators live`` on the same server, with a webhook: ``--whales`` whale trades, one every
half second; printed: the median delay from the whale's frame leaving the server to the signal
reaching the webhook (aim: under 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil
from websockets.asyncio.server import serve

ROOT = Path(__file__).resolve().parent.parent


def book_push(inst: str, k: int, ts: int) -> bytes:
    levels = [[f"{95000 + (k + j) % 400 / 10:.1f}", str(j % 37), "0", str(1 + j % 5)] for j in range(8)]
    return orjson.dumps({"arg": {"channel": "books", "instId": inst}, "action": "update", "data": [{
        "asks": levels, "bids": levels, "ts": str(ts), "checksum": -1234567, "seqId": k + 1, "prevSeqId": k}]})


def trade_push(inst: str, tid: int, ts: int, sz: str = "1") -> bytes:
    return orjson.dumps({"arg": {"channel": "trades", "instId": inst}, "data": [{
        "instId": inst, "tradeId": str(tid), "px": "95000.1", "sz": sz, "side": "buy", "ts": str(ts), "count": "1"}]})


class Server:
    """Plays books and trades at a rate (and, for live, whales) to every subscribed connection."""

    def __init__(self, insts: list[str], trades_per_second: float, whales: int = 0) -> None:
        self.insts, self.tps, self.whales = insts, trades_per_second, whales
        self.sent_whales: dict[str, float] = {}  # trade id -> wall time sent
        self.clients: set = set()
        self.frames = 0

    def start(self) -> "Server":
        ready = threading.Event()

        async def main() -> None:
            async with serve(self._serve, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
                self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
                ready.set()
                await self._play()

        threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
        ready.wait(10)
        return self

    async def _serve(self, ws) -> None:
        try:
            async for message in ws:
                if message == "ping":
                    await ws.send("pong")
                    continue
                await ws.send(orjson.dumps({"event": "subscribe", "arg": {"channel": "trades"}}).decode())
                self.clients.add(ws)
        except Exception:  # noqa: BLE001 - the recorder stopped (killed, or Ctrl-C)
            self.clients.discard(ws)

    async def _play(self) -> None:
        tid = {i: 1000 for i in self.insts}
        tick, k, carry = 0.1, 0, 0.0
        next_whale = time.time() + 3
        while True:
            start = time.time()
            ts = int(start * 1000)
            frames = [book_push(i, k, ts) for i in self.insts]
            carry += self.tps * tick
            for _ in range(int(carry)):
                for i in self.insts:
                    tid[i] += 1
                    frames.append(trade_push(i, tid[i], ts))
            carry -= int(carry)
            whale = None
            if self.whales and len(self.sent_whales) < self.whales and start >= next_whale:
                i = self.insts[0]
                tid[i] += 1
                whale = (str(tid[i]), trade_push(i, tid[i], ts, sz="500"))
                next_whale = start + 0.5
            for ws in list(self.clients):
                try:
                    for f in frames:
                        await ws.send(f.decode())
                    if whale is not None:
                        self.sent_whales[whale[0]] = time.time()
                        await ws.send(whale[1].decode())
                except Exception:  # noqa: BLE001 - a closed client
                    self.clients.discard(ws)
            self.frames += len(frames)
            k += 1
            await asyncio.sleep(max(0.0, tick - (time.time() - start)))


class Webhook:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.arrived[body["signal_id"].split("|")[1]] = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/signal"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def write_config(path: Path, insts: list[str], url: str, extra: str = "") -> None:
    labels = json.dumps([f"okx/perps/{i}" for i in insts])
    path.write_text(f'[record]\ninstruments = {labels}\nchannels = ["trades", "books"]\nbackfill_max_minutes = 0\n'
                    f'[record.endpoints]\nokx_ws = "{url}"\nokx_rest = "http://127.0.0.1:9"\n{extra}')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instruments", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--trades-per-second", type=float, default=5)
    ap.add_argument("--whales", type=int, default=20)
    a = ap.parse_args()
    insts = [f"C{k:02d}-USDT-SWAP" for k in range(a.instruments - 1)] + ["BTC-USDT-SWAP"]
    insts = insts[::-1]  # BTC first: the whales are its trades
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = Server(insts, a.trades_per_second).start()
        cfg = tmp / "record.toml"
        write_config(cfg, insts, server.url)
        # instruments the built-in table does not know are fine for the recorder (it needs no contract terms)
        stats = tmp / "stats.json"
        proc = subprocess.Popen([sys.executable, "-m", "indicator_core", "record", "--vault", str(tmp / "v"),
                                 "--config", str(cfg), "--quiet", "--stats", str(stats)], env=env)
        p = psutil.Process(proc.pid)
        time.sleep(3)  # start-up, connection
        c0, t0, f0 = sum(p.cpu_times()[:2]), time.monotonic(), server.frames
        time.sleep(a.seconds)
        c1, t1, f1 = sum(p.cpu_times()[:2]), time.monotonic(), server.frames
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        s = json.loads(stats.read_text())
        size = sum(f.stat().st_size for f in (tmp / "v" / "raw").rglob("*.jsonl"))
        cpu = (c1 - c0) / (t1 - t0)
        rate = (f1 - f0) / (t1 - t0)
        per_day = size / s["seconds"] * 86_400 / len(insts)
        print(f"record: {len(insts)} instruments, {rate:,.0f} pushes/s ({a.trades_per_second:g} trades/s and 10 "
              f"book pushes/s each), {a.seconds:g} s")
        print(f"  CPU {cpu:.1%} of one core (aim < 20%)  "
              f"{'met' if cpu < 0.2 else 'MISSED'}")
        d = s["receive_to_disk_ms"]
        print(f"  receive-to-disk median {d['median']:.3f} ms, p99 {d['p99']:.3f} ms over {d['n']:,} pushes "
              f"(aim median < 5 ms)  {'met' if d['median'] < 5 else 'MISSED'}")
        print(f"  disk {per_day / 2**20:,.0f} MiB per instrument per day at these rates "
              f"({s['lines']:,} lines, {size / 2**20:.1f} MiB in {s['seconds']:.0f} s)")

        if a.whales:
            server = Server(["BTC-USDT-SWAP"], a.trades_per_second, whales=a.whales).start()
            hook = Webhook()
            cfg = tmp / "live.toml"
            write_config(cfg, ["BTC-USDT-SWAP"], server.url,
                         f'\n[notify.bot]\nkind = "webhook"\nurl = "{hook.url}"\nstreams = ["whales"]\n')
            vault = tmp / "live"
            (vault / "raw" / "trades").mkdir(parents=True)
            live = subprocess.Popen([sys.executable, "-m", "indicator_core", "live", "--vault", str(vault), "--config",
                                     str(cfg), "--quiet", "--poll", "0.05"], env=env)
            deadline = time.time() + 30 + a.whales
            while len(hook.arrived) < a.whales and time.time() < deadline:
                time.sleep(0.1)
            live.send_signal(signal.SIGINT)
            live.wait(60)
            delays = [(hook.arrived[t] - server.sent_whales[t]) * 1000 for t in hook.arrived if t in server.sent_whales]
            if delays:
                med = statistics.median(delays)
                print(f"live: {len(delays)} whale signals, frame sent -> webhook received: median {med:.1f} ms, "
                      f"max {max(delays):.1f} ms (aim median < 100 ms)  {'met' if med < 100 else 'MISSED'}")
            else:
                print("live: no whale signal arrived")


if __name__ == "__main__":
    main()
