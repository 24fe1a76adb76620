"""Time a run that has nothing to do over a vault of many tiny instruments.

    python bench/noop.py [--instruments 10000] [--repeat 3] [--before CHECKOUT]

Builds (once, under ``bench/work/``) a vault of N spot instruments with one
small day file each, processes it, then times ``indicators run`` again with
nothing new: the whole command (a new process) and its pass alone
(``--stats`` ``pass_seconds``), the median of ``--repeat`` runs.  It also
checks that the no-op run left every state file as it was (bytes and
modification time).  With ``--before CHECKOUT`` (another copy of the
project, e.g. the main branch) the same is measured with that code on its
own copy of the vault and the ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def make_raw(root: Path, n: int) -> None:
    """N instruments under ``root/raw/trades/okx/spot/``, each one day file of three trades over two minutes."""
    base = root / "raw" / "trades" / "okx" / "spot"
    ts = 1723075200000  # 2024-08-08 00:00 UTC
    for i in range(n):
        inst = f"T{i:05d}-USDT"
        folder = base / inst
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            '{"instId":"%s","tradeId":"%d","px":"%d.5","sz":"0.%d","side":"%s","ts":"%d"}\n'
            % (inst, 100 + k, 60000 + k, k + 1, "buy" if k % 2 else "sell", ts + k * 40_000)
            for k in range(3)
        ]
        (folder / "trades_2024-08-08.jsonl").write_text("".join(lines), encoding="utf-8")


def command(code: Path, vault: Path, stats: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(code), "INDICATOR_CORE_DISABLE_ENTRYPOINTS": "1"}
    return [sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet", "--stats", str(stats)], env


def states(vault: Path) -> dict[str, tuple[int, bytes]]:
    return {p.as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in (vault / "state").rglob("*.state.json")}


def measure(label: str, code: Path, raw: Path, n: int, repeat: int) -> dict[str, float]:
    vault = HERE / "work" / f"noop-{n}-{label}"
    stats = vault.parent / f"noop-{n}-{label}.stats.json"
    if not (vault / "state").is_dir():
        shutil.rmtree(vault, ignore_errors=True)
        shutil.copytree(raw, vault)
        args, env = command(code, vault, stats)
        started = time.perf_counter()
        subprocess.run(args, env=env, check=True, cwd=code)
        print(f"{label}: first run over {n} instruments: {time.perf_counter() - started:.1f} s", flush=True)
    walls, passes, untouched = [], [], True
    for _ in range(repeat):
        before = states(vault)
        args, env = command(code, vault, stats)
        started = time.perf_counter()
        subprocess.run(args, env=env, check=True, cwd=code)
        walls.append(time.perf_counter() - started)
        passes.append(json.loads(stats.read_text())["pass_seconds"])
        untouched &= states(vault) == before
    out = {"wall": statistics.median(walls), "pass": statistics.median(passes), "states_untouched": untouched}
    print(f"{label}: no-op run {out['wall']:.2f} s (pass {out['pass']:.2f} s), state files untouched: {untouched}",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instruments", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="another checkout of the project to compare with")
    args = ap.parse_args()
    raw = HERE / "work" / f"noop-{args.instruments}-raw"
    if not raw.is_dir():
        make_raw(raw, args.instruments)
    after = measure("this", REPO, raw, args.instruments, args.repeat)
    if args.before is not None:
        before = measure("before", args.before.resolve(), raw, args.instruments, args.repeat)
        print(f"before / this: whole command {before['wall'] / after['wall']:.1f}x, "
              f"pass {before['pass'] / after['pass']:.1f}x")


if __name__ == "__main__":
    main()
