"""The backtest against the pass it replays, measured in the same run (SPEC section 19's aim).

    python bench/backtest.py [--trades 4000000] [--signals 1000] [--repeat 3]

On the benchmark's generated day of ``--trades`` trades (``generate.py``, under ``bench/work/``): the time of
``indicators run`` (default indicators, in this process, start-up left out), then of ``indicators backtest``
with one strategy on ``--signals`` confluence signals spread over the day (committed beside the run's
outputs), its latency sweep included (six walks of the trades in one read).  Prints both and the ratio
(aim: the backtest takes less time than the pass).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trades", type=int, default=4_000_000)
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    from passes import trade_day  # type: ignore[import-not-found]

    from indicator_core.cli import main as cli
    from indicator_core.config import load_config
    from indicator_core.report.backtest import run_backtest

    data = trade_day("backtest", a.trades)
    runs, tests = [], []
    for _ in range(a.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
            vault = Path(tmp) / "v"
            folder = vault / "raw" / "trades" / "okx" / "perps" / "BTC-USDT-SWAP"
            folder.parent.mkdir(parents=True)
            folder.symlink_to(data, target_is_directory=True)
            t0 = time.perf_counter()
            assert cli(["run", "--vault", str(vault), "--quiet", "--jobs", "1"]) == 0
            runs.append(time.perf_counter() - t0)
            vol = (vault / "derived/volume/okx/perps/BTC-USDT-SWAP/volume_1m.jsonl").read_text().splitlines()
            minutes = [json.loads(x)["timestamp_utc"] for x in vol]
            rnd = random.Random(5)
            picked = sorted(rnd.sample(range(len(minutes) - 1), min(a.signals, len(minutes) - 1)))
            out = vault / "derived/confluence/okx/perps/BTC-USDT-SWAP"
            out.mkdir(parents=True, exist_ok=True)
            body = "".join(json.dumps({"timestamp_utc": minutes[i], "inst_id": "BTC-USDT-SWAP",
                                       "direction": rnd.choice(("long", "short")), "level": str(i), "score": 3})
                           + "\n" for i in picked)
            (out / "signals.jsonl").write_text(body)
            state = vault / "state/confluence/okx/perps/BTC-USDT-SWAP.state.json"
            state.write_text(json.dumps({"format": 1, "outputs": {"signals": len(body.encode())}}))
            cfg = Path(tmp) / "c.toml"
            cfg.write_text('[backtest.b]\nsignal = "confluence"\nstop_bp = "15"\ntarget_bp = "25"\n'
                           'max_hold_minutes = 20\n')
            conf = load_config(cfg)
            t0 = time.perf_counter()
            run_backtest(vault, conf, None, None)
            tests.append(time.perf_counter() - t0)
    r, b = min(runs), min(tests)
    print(f"indicators run over {a.trades:,} trades:                    {r:.3f} s")
    print(f"indicators backtest, {a.signals:,} signals, sweep included: {b:.3f} s")
    print(f"ratio backtest / run: {b / r:.3f} (aim < 1)")


if __name__ == "__main__":
    main()
