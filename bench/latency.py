"""Follow mode, end to end: from the write of the trade line that closes a minute to the signal's POST.

    python bench/latency.py [--cycles 6] [--whales 30] [--modes events,poll]

For each mode (``events``: file-system notifications, the default of ``run --follow``;
``poll``: ``--no-watch --poll 1``, what a follower did before) it starts a local HTTP receiver
on 127.0.0.1 and a follower with a webhook notifier, then writes trade lines and measures the
wall-clock time from the write of a minute's closing trade to the arrival of its POST:

* ``whales``: generated trades, one small trade in each minute and one whale trade at the start
  of the next (it closes the minute and is itself a whale record);
* ``confluence``: the recorded ETH-USDT-SWAP minutes of tests/data replayed a few times, shifted in
  time, with a config that makes confluence fire (1-minute wicks, tiers T2-T4, min_score 2).  A
  batch run on the same lines says which trade closes each signal's minute; the follower gets the
  lines before it in one write, settles, then gets the closing line alone.  The latency is to the
  first POST of that minute's signals.

Prints the median, p90 and max per stream and mode.  ``--grace`` is set far out: the minutes
close on their closing trade, never on the wall clock (the recorded times are in the past).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ETH = REPO / "tests/data/binance-as-okx/eth-perp-2024-08-08/ETH-USDT-SWAP/trades_2024-08-08.jsonl"
CONFLUENCE_CFG = ('[plugins.volume]\nmedian_window = 3\nmedian_min_bars = 1\n[plugins.wicks]\ntimeframe = "1m"\n'
                  'min_wick_pct = "0.001"\n[plugins.confluence]\ntiers = ["T2", "T3", "T4"]\nmin_score = 2\n')
NEVER = str(10 * 365 * 86400)
MODES = {"events": ["--poll", "1"], "poll": ["--poll", "1", "--no-watch"]}


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.got = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.time()
                with outer.got:
                    outer.arrived.setdefault(body["signal_id"], now)
                    outer.got.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/s"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, ids: list[str], seconds: float = 60) -> float:
        """The arrival of the first of ``ids``, once all have arrived."""
        with self.got:
            if not self.got.wait_for(lambda: all(i in self.arrived for i in ids), timeout=seconds):
                raise SystemExit(f"no POST for {[i for i in ids if i not in self.arrived][:3]} within {seconds} s")
            return min(self.arrived[i] for i in ids)


def follower(vault: Path, cfg: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config",
                             str(cfg), "--follow", "--grace", NEVER, "--quiet", *MODES[mode]], env=env)


def settle(mode: str) -> None:
    """Let the follower finish what it was given; in poll mode, land anywhere in its poll cycle."""
    time.sleep(0.4 + (random.uniform(0, 1.0) if mode == "poll" else 0.0))


def replay(cycles: int) -> list[tuple[int, bytes]]:
    """The recorded minutes ``cycles`` times, each copy 6 minutes later, early in the same UTC day."""
    rows = [orjson.loads(line) for line in ETH.read_bytes().splitlines()]
    shift0 = -23 * 3600_000  # 23:54 -> 00:54: every copy stays in the file's day
    t_first, id_first = int(rows[0]["ts"]), int(rows[0]["tradeId"])
    span = int(rows[-1]["ts"]) - t_first
    step = (span // 60_000 + 1) * 60_000
    out = []
    for k in range(cycles):
        for r in rows:
            ts = int(r["ts"]) + shift0 + k * step
            tid = int(r["tradeId"]) - id_first + 1 + k * 100_000
            out.append((ts, orjson.dumps({**r, "tradeId": str(tid), "ts": str(ts)}) + b"\n"))
    return out


def bench_confluence(mode: str, cycles: int, tmp: Path) -> list[float]:
    from indicator_core.cli import main
    from indicator_core.timeutil import minute_of_iso

    inst = "ETH-USDT-SWAP"
    lines = replay(cycles)
    name = "trades_" + time.strftime("%Y-%m-%d", time.gmtime(lines[0][0] // 1000)) + ".jsonl"
    whole = tmp / f"whole-{mode}"
    (whole / "raw/trades/okx/perps" / inst).mkdir(parents=True)
    (whole / "raw/trades/okx/perps" / inst / name).write_bytes(b"".join(line for _, line in lines))
    (tmp / "cc.toml").write_text(CONFLUENCE_CFG)
    assert main(["run", "--vault", str(whole), "--config", str(tmp / "cc.toml"), "--quiet"]) == 0
    signals = [orjson.loads(s) for s in
               (whole / "derived/confluence/okx/perps" / inst / "signals.jsonl").read_bytes().splitlines()]
    groups: dict[int, list[str]] = {}  # index of the closing line -> the signal ids it brings
    for s in signals:
        end = (minute_of_iso(s["timestamp_utc"]) + 1) * 60_000  # the first trade at or after it closes the minute
        close = next(i for i, (ts, _) in enumerate(lines) if ts >= end)
        groups.setdefault(close, []).append(f"{inst}|{s['timestamp_utc']}|{s['level']}")  # the SPEC 12 id
    rx = Receiver()
    cfg = tmp / f"c-{mode}.toml"
    cfg.write_text(CONFLUENCE_CFG + f'[notify.bench]\nkind = "webhook"\nurl = "{rx.url}"\nstreams = ["confluence"]\n')
    vault = tmp / f"live-{mode}"
    folder = vault / "raw/trades/okx/perps" / inst
    folder.mkdir(parents=True)
    (folder / name).write_bytes(b"")
    proc = follower(vault, cfg, mode)
    out = []
    try:
        time.sleep(2.0)
        done = 0
        with open(folder / name, "ab") as f:
            for close, ids in sorted(groups.items()):
                f.write(b"".join(line for _, line in lines[done:close]))
                f.flush()
                settle(mode)
                with rx.got:
                    early = [i for i in ids if i in rx.arrived]
                if early:
                    raise SystemExit(f"{early[0]}: delivered before its closing trade was written")
                written = time.time()
                f.write(lines[close][1])
                f.flush()
                out.append((rx.wait(ids) - written) * 1000)
                done = close + 1
    finally:
        proc.terminate()
        proc.wait(30)
        rx.server.shutdown()
    return out


def bench_whales(mode: str, n: int, tmp: Path) -> list[float]:
    inst = "BTC-USDT-SWAP"
    rx = Receiver()
    cfg = tmp / f"w-{mode}.toml"
    cfg.write_text(f'[notify.bench]\nkind = "webhook"\nurl = "{rx.url}"\nstreams = ["whales"]\n')
    vault = tmp / f"whales-{mode}"
    folder = vault / "raw/trades/okx/perps" / inst
    folder.mkdir(parents=True)
    t0 = (int(time.time()) // 86400) * 86400 * 1000 + 60_000
    path = folder / ("trades_" + time.strftime("%Y-%m-%d", time.gmtime(t0 // 1000)) + ".jsonl")
    path.write_bytes(b"")

    def line(tid: int, sz: str, ts: int) -> bytes:
        return ('{"instId":"%s","tradeId":"%d","px":"60000","sz":"%s","side":"buy","ts":"%d"}\n'
                % (inst, tid, sz, ts)).encode()

    proc = follower(vault, cfg, mode)
    out = []
    try:
        time.sleep(2.0)
        with open(path, "ab") as f:
            for k in range(n + 2):
                minute = t0 + k * 60_000
                f.write(line(2 * k + 1, "0.01", minute + 30_000))  # a small trade in minute k ...
                f.flush()
                settle(mode)
                written = time.time()
                f.write(line(2 * k + 2, "500", minute + 60_000))  # ... closed by a whale trade in minute k + 1
                f.flush()
                arrived = rx.wait([f"{inst}|{2 * k + 2}"])
                if k >= 2:  # the first ones include the follower's warm-up
                    out.append((arrived - written) * 1000)
    finally:
        proc.terminate()
        proc.wait(30)
        rx.server.shutdown()
    return out


def show(stream: str, mode: str, xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[max(0, int(round(0.9 * len(xs))) - 1)]
    return (f"{stream:<10} {mode:<7} n={len(xs):<3} median {statistics.median(xs):7.1f} ms   p90 {p90:7.1f} ms   "
            f"max {xs[-1]:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=6, help="copies of the recorded ETH minutes (confluence)")
    ap.add_argument("--whales", type=int, default=30, help="whale trades measured")
    ap.add_argument("--modes", default="events,poll")
    args = ap.parse_args()
    random.seed(7)
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for mode in args.modes.split(","):
            rows.append(show("whales", mode, bench_whales(mode, args.whales, tmp)))
            print(rows[-1], flush=True)
            rows.append(show("confluence", mode, bench_confluence(mode, args.cycles, tmp)))
            print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
