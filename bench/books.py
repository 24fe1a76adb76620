"""The order-book benchmark: a generated day of BTC-USDT-SWAP ``books`` against parsing it with orjson.

    python bench/books.py                    # 1440 minutes: 864,000 pushes of 400 levels
    python bench/books.py --minutes 120      # a shorter stream

Measured in the same run, each as its own process: (1) reading the file and
``orjson.loads`` of every line, nothing else (the floor); (2) the books pass
of ``indicators run`` (book state, sequence, checksums verified, ``buckets``)
on the stream with checksums; (3) the same on the stream with checksum ``0``
(OKX since June 2026); (4) the pass of (2) on a stream twice as long, for
peak memory (it must stay flat as the file grows).  Ratios are to (1).
Targets: (2) ≤ 5× (1), (3) ≤ 3× (1).  Results go to ``bench/results/books-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from generate_books import book_lines, write_days  # noqa: E402

INST = "BTC-USDT-SWAP"
FLOOR = """
import sys, time, orjson
t = time.perf_counter()
n = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
print(time.perf_counter() - t)
"""


def run(cmd: list[str]) -> tuple[str, float]:
    """stdout and peak RSS (MiB) of ``cmd``."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE)
    if hasattr(os, "wait4"):
        out = proc.stdout.read() if proc.stdout else b""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss / 1024
    else:
        out, _ = proc.communicate()
        peak = float("nan")
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed with status {proc.returncode}")
    return out.decode(), peak


def vault(work: Path, name: str, minutes: float, checksums: bool, seed: int) -> tuple[Path, list[Path]]:
    v = work / name
    folder = v / "raw" / "books" / "okx" / "perps" / INST
    files = sorted(folder.glob("books_*.jsonl")) if folder.is_dir() else []
    marker = v / "generated.json"
    want = {"minutes": minutes, "checksums": checksums, "seed": seed}
    if not files or not marker.exists() or json.loads(marker.read_text()) != want:
        shutil.rmtree(v, ignore_errors=True)
        t = time.perf_counter()
        files = write_days(folder, book_lines(INST, minutes=minutes, interval_ms=100, levels=400, seed=seed,
                                              checksums=checksums, heartbeat_every=0))
        marker.write_text(json.dumps(want))
        print(f"generated {name}: {minutes} minutes in {time.perf_counter() - t:.1f} s", flush=True)
    return v, files


def books_pass(v: Path, work: Path) -> tuple[float, float, int]:
    """Pass seconds, peak MiB and pushes of a fresh ``indicators run`` over the books of ``v``."""
    for sub in ("derived", "state"):
        shutil.rmtree(v / sub, ignore_errors=True)
    stats = work / "books-stats.json"
    _, peak = run([sys.executable, "-m", "indicator_core", "run", "--vault", str(v), "--quiet", "--stats", str(stats)])
    data = json.loads(stats.read_text())
    pushes = sum(i.get("pushes", 0) for i in data["instruments"].values())
    return data["pass_seconds"], peak, pushes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=1440)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "books-latest.json")
    ap.add_argument("--no-flat", action="store_true", help="skip (4), the stream twice as long")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    ck, ck_files = vault(a.work, "books-checksum", a.minutes, True, a.seed)
    zero, zero_files = vault(a.work, "books-zero", a.minutes, False, a.seed)
    out, floor_peak = run([sys.executable, "-c", FLOOR, *map(str, ck_files)])
    floor = float(out)
    out0, _ = run([sys.executable, "-c", FLOOR, *map(str, zero_files)])
    floor0 = float(out0)
    secs, peak, pushes = books_pass(ck, a.work)
    secs0, peak0, _ = books_pass(zero, a.work)
    rows = {
        "floor_orjson_seconds": floor, "floor_orjson_seconds_zero": floor0,
        "pass_seconds": secs, "pass_seconds_zero": secs0, "pushes": pushes,
        "ratio": secs / floor, "ratio_zero": secs0 / floor0,
        "pushes_per_second": pushes / secs, "pushes_per_second_zero": pushes / secs0,
        "peak_mib": peak, "peak_mib_zero": peak0, "floor_peak_mib": floor_peak,
    }
    print(f"(1) orjson only:                {floor:7.2f} s  ({pushes / floor:,.0f} lines/s)")
    print(f"(2) books pass, checksums:      {secs:7.2f} s  {secs / floor:4.1f}x (1)  {pushes / secs:,.0f} pushes/s  "
          f"peak {peak:.0f} MiB  [target <= 5x: {'met' if secs / floor <= 5 else 'missed'}]")
    print(f"(3) books pass, checksum 0:     {secs0:7.2f} s  {secs0 / floor0:4.1f}x (1)  {pushes / secs0:,.0f} pushes/s  "
          f"peak {peak0:.0f} MiB  [target <= 3x: {'met' if secs0 / floor0 <= 3 else 'missed'}]")
    if not a.no_flat:
        long, _ = vault(a.work, "books-long", a.minutes * 2, True, a.seed)
        secs2, peak2, pushes2 = books_pass(long, a.work)
        rows.update({"long_pushes": pushes2, "long_pass_seconds": secs2, "long_peak_mib": peak2})
        print(f"(4) twice as long, checksums:   {secs2:7.2f} s  peak {peak2:.0f} MiB (vs {peak:.0f})")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "minutes": a.minutes, **rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
