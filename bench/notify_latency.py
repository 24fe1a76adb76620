"""Latency of signal delivery in follow mode: from a whale trade's line written to its POST arriving.

    python bench/notify_latency.py [--poll 0.05] [--n 40]

Starts a local HTTP receiver on 127.0.0.1, a follower (`indicators run --follow`) with a webhook
notifier on the `whales` stream, then appends one whale trade at a time to the trade file and
measures the wall-clock time until the receiver has its POST.  Prints the median, the 90th
percentile and the maximum.  The follower wakes on file-system notifications as well as every
--poll seconds; bench/latency.py compares the two and measures confluence signals too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INST = "BTC-USDT-SWAP"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--poll", type=float, default=0.05)
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    arrived: dict[str, float] = {}
    got = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with got:
                arrived[body["trade_id"]] = time.time()
                got.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp) / "vault"
        folder = vault / "raw/trades/okx/perps" / INST
        folder.mkdir(parents=True)
        path = folder / "trades_2026-11-25.jsonl"
        ts0 = int(time.time() * 1000)
        path.write_bytes(b"")
        cfg = Path(tmp) / "c.toml"
        cfg.write_text(f'[notify.bench]\nkind = "webhook"\nurl = "http://127.0.0.1:{server.server_address[1]}/s"\n'
                       'streams = ["whales"]\n')
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config",
                                 str(cfg), "--follow", "--poll", str(args.poll), "--quiet"], env=env)
        latencies = []
        try:
            time.sleep(2.0)  # start-up
            with open(path, "ab") as f:
                for k in range(args.n + 3):
                    tid = str(1000 + k)
                    line = ('{"instId":"%s","tradeId":"%s","px":"60000","sz":"500","side":"buy","ts":"%d"}\n'
                            % (INST, tid, ts0 + k * 100)).encode()
                    written = time.time()
                    f.write(line)
                    f.flush()
                    with got:
                        if not got.wait_for(lambda: tid in arrived, timeout=30):
                            raise SystemExit(f"trade {tid}: no POST within 30 s")
                    if k >= 3:  # the first ones include the follower's warm-up
                        latencies.append((arrived[tid] - written) * 1000)
                    time.sleep(args.poll * 1.37)  # not in step with the poll
        finally:
            proc.terminate()
            proc.wait(30)
            server.shutdown()
    latencies.sort()
    print(f"poll {args.poll} s, {len(latencies)} whale trades: trade written -> POST received: "
          f"median {statistics.median(latencies):.1f} ms, p90 {latencies[int(0.9 * len(latencies)) - 1]:.1f} ms, "
          f"max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
