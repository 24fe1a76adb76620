"""What a minute costs: a quiet instrument (most minutes empty) against a busy one, in the same run.

    python bench/quiet.py                      # 5,000 trades about ten minutes apart, against 1M trades
    python bench/quiet.py --trades 30000 --repeat 3

A minute bar costs the indicators the same Python whether it held thousands of trades or none,
so on the quiet swaps that make up most of a 250-instrument backfill the pass is nearly all
per-bar work.  This prints the pass time per bar of both instruments (start-up excluded: the
``pass_seconds`` of ``indicators run --stats``) and their ratio, all five indicators enabled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import INST  # noqa: E402
from run import INDICATORS, child_env, config, dataset, fresh_vault, measure, project  # noqa: E402


def quiet_dataset(work: Path, n: int, gap_minutes: float, seed: int) -> Path:
    raw = work / f"quiet-{n}-{gap_minutes:g}-{seed}" / INST
    marker = raw.parent / "done"
    if not marker.exists():
        print(f"generating {n:,} trades about {gap_minutes:g} minutes apart ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(raw), "--trades", str(n), "--seed", str(seed),
                        "--mean-gap-ms", str(gap_minutes * 60_000)], check=True)
        marker.write_text("ok")
    return raw


def per_bar(work: Path, name: str, raw: Path, repeat: int) -> tuple[float, int, float]:
    """Median seconds of the pass, its bars, and the median whole-process seconds."""
    passes, wall, bars = [], [], 0
    for _ in range(repeat):
        vault = fresh_vault(work, name, raw)
        seconds, _ = measure(project(vault, config(work / f"{name}.toml", INDICATORS)), 1)
        stats = json.loads((vault / "stats.json").read_text())
        passes.append(stats["pass_seconds"])
        wall.append(seconds)
        bars = sum(s["bars"] for s in stats["instruments"].values())
    return statistics.median(passes), bars, statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=5_000, help="trades of the quiet instrument")
    ap.add_argument("--gap-minutes", type=float, default=10.0, help="their mean distance before bursts")
    ap.add_argument("--busy", type=int, default=1_000_000, help="trades of the busy instrument")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    quiet = quiet_dataset(work, args.trades, args.gap_minutes, args.seed)
    busy = dataset(work, args.busy, 1)
    subprocess.run(project(fresh_vault(work, "warm", quiet), config(work / "warm.toml", INDICATORS)),
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)  # the files in the page cache
    rows = {}
    for name, raw, label in (("quiet", quiet, f"quiet: {args.trades:,} trades"),
                             ("busy", busy, f"busy: {args.busy:,} trades")):
        seconds, bars, wall = per_bar(work, name, raw, args.repeat)
        rows[name] = (seconds, bars)
        print(f"  {label:<28} {bars:>9,} bars  pass {seconds:6.2f} s  {seconds / bars * 1e6:6.1f} µs a bar"
              f"  (whole process {wall:.2f} s)", flush=True)
    (q, qb), (b, bb) = rows["quiet"], rows["busy"]
    print(f"\n  the quiet instrument's pass takes {q / b:.1f} x the busy one's ({qb:,} minutes against {bb:,}, "
          f"{args.trades:,} trades against {args.busy:,}; same run)")


if __name__ == "__main__":
    main()
