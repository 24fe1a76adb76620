"""Generate realistic OKX BTC-USDT-SWAP trade days for the benchmark.

The flow is bursty (a self-exciting arrival rate: quiet stretches and
bursts), sizes are heavy-tailed (Pareto, in 0.01-contract lots) so that about
0.5% of trades exceed $100k notional, taker sides cluster in runs, the price
is a random walk on the 0.1 tick, and trade ids are contiguous.  Lines are in
the exporter's shape, one file per UTC day.

    python bench/generate.py OUT_DIR --trades 2000000 [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

INST = "BTC-USDT-SWAP"
START_MS = 1732320000000  # 2024-11-23 00:00:00 UTC


def generate(n: int, seed: int = 1, start_ms: int = START_MS, first_id: int = 1_500_000_000,
             mean_gap_ms: float = 45.0, volatility: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # bursty arrivals: a slowly varying intensity times exponential gaps
    regime = np.repeat(rng.lognormal(0.0, 1.2, size=n // 500 + 1), 500)[:n]
    gaps = rng.exponential(mean_gap_ms, size=n) / regime  # ms
    ts = start_ms + np.cumsum(gaps).astype(np.int64)
    # price: random walk in ticks of 0.1
    steps = rng.choice([-1, 0, 0, 0, 1], size=n) * rng.integers(1, 4, size=n) * volatility
    px_ticks = 950_000 + np.cumsum(steps)  # 95000.0 in 0.1 ticks
    px_ticks = np.maximum(px_ticks, 10)
    # sizes in 0.01-contract lots; one contract is 0.01 BTC (~$950)
    alpha = 0.99
    lots = np.floor((rng.pareto(alpha, size=n) + 1.0) * 50).astype(np.int64)  # >= 0.5 contracts
    lots = np.minimum(lots, 2_000_000)
    # sides come in runs
    flips = rng.random(n) < 0.3
    side = (np.cumsum(flips) % 2).astype(bool)
    ids = first_id + np.arange(n, dtype=np.int64)
    return {"ts": ts, "px_ticks": px_ticks, "lots": lots, "is_buy": side, "ids": ids}


def lines(cols: dict[str, np.ndarray]) -> list[str]:
    ts, px, lots, buy, ids = (cols[k].tolist() for k in ("ts", "px_ticks", "lots", "is_buy", "ids"))
    out = []
    for t, p, l, b, i in zip(ts, px, lots, buy, ids):
        sz = f"{l // 100}.{l % 100:02d}".rstrip("0").rstrip(".")
        out.append(
            f'{{"instId":"{INST}","tradeId":"{i}","px":"{p // 10}.{p % 10}","sz":"{sz}",'
            f'"side":"{"buy" if b else "sell"}","ts":"{t}"}}\n'
        )
    return out


def write_days(folder: Path, cols: dict[str, np.ndarray], mode: str = "w") -> list[Path]:
    """Write the trades into ``trades_{date}.jsonl`` files (appending with mode "a")."""
    folder.mkdir(parents=True, exist_ok=True)
    days = cols["ts"] // 86_400_000
    paths = []
    text = lines(cols)
    bounds = np.flatnonzero(np.diff(days)) + 1
    for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(days)]):
        day = time.strftime("%Y-%m-%d", time.gmtime(int(days[a]) * 86400))
        path = folder / f"trades_{day}.jsonl"
        with open(path, mode, encoding="utf-8", newline="\n") as f:
            f.writelines(text[a:b])
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="instrument folder to write into")
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mean-gap-ms", type=float, default=45.0, help="mean time between trades before bursts")
    ap.add_argument("--volatility", type=int, default=1, help="price step multiplier (ticks per move)")
    ap.add_argument("--append", type=int, default=0, metavar="N",
                    help="append N trades continuing after the last trade already in OUT (--trades is ignored)")
    args = ap.parse_args()
    if args.append:
        last_file = sorted(args.out.glob("trades_*.jsonl"))[-1]
        with open(last_file, "rb") as f:
            f.seek(max(0, last_file.stat().st_size - 4096))
            last = json.loads(f.read().splitlines()[-1])
        cols = generate(args.append, args.seed, start_ms=int(last["ts"]) + 1, first_id=int(last["tradeId"]) + 1,
                        mean_gap_ms=args.mean_gap_ms, volatility=args.volatility)
        paths = write_days(args.out, cols, mode="a")
    else:
        cols = generate(args.trades, args.seed, mean_gap_ms=args.mean_gap_ms, volatility=args.volatility)
        paths = write_days(args.out, cols)
    notional = cols["px_ticks"] / 10 * cols["lots"] / 100 * 0.01
    print(f"{len(cols['ts'])} trades in {len(paths)} files; {np.mean(notional > 100_000):.2%} over $100k")


if __name__ == "__main__":
    main()
