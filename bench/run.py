"""The one-pass benchmark: every figure measured in the same run, printed as ratios.

    python bench/run.py                      # 2M trades
    python bench/run.py --trades 2000000 --flat 8000000 --repeat 3
    python bench/run.py --contenders --repeat 3   # the project against DuckDB and polars, and --jobs

With ``--contenders`` it measures instead, on 1M and 4M trades, this project with all five
indicators, the DuckDB script and the polars script (time and peak memory, ratios to
DuckDB and polars), the days that used to fall off (a whale-heavy day, a file of 3.7 days'
trades, the pure path, a block of late trades, a file read twice, the command's import time:
:func:`hard_days`), and the speed-up of
``--jobs 2`` over ``--jobs 1`` on eight instruments of 1M trades each.

With ``--flat N`` it also runs (4), (2) and (6) on a file of N trades: peak memory must stay
flat as the file grows, and the share of an incremental pass is measured apart from the
fixed costs that dominate it on a small file.

Each contender runs as its own process, timed by wall clock, its peak memory
read from the kernel (``wait4`` rusage).  Ratios are to (1) the parse floor
and (2) the polars script, both measured in this same run, because absolute
times on a shared machine mean little.  Figures are written as JSON to
``bench/results/latest.json`` (and a dated copy) for comparison over time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from generate import INST  # noqa: E402

INDICATORS = ["volume", "cvd", "vwap", "candles", "wicks"]


def measure(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MiB) of ``cmd`` over ``repeat`` runs."""
    return measure_cpu(cmd, repeat)[:2]


def measure_cpu(cmd: list[str], repeat: int) -> tuple[float, float, float | None]:
    """:func:`measure` and the median CPU seconds (user + system, children included; None on Windows)."""
    times, peaks, cpus = [], [], []
    env = child_env()
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        if hasattr(os, "wait4"):
            _, status, usage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            peak = usage.ru_maxrss / 1024  # KiB on Linux
            cpus.append(usage.ru_utime + usage.ru_stime)
            proc.returncode = code
        else:  # Windows: the peak working set, read by psutil when the process ends
            import psutil

            watched = psutil.Process(proc.pid)
            peak = 0.0
            while proc.poll() is None:
                try:
                    peak = max(peak, getattr(watched.memory_info(), "peak_wset", watched.memory_info().rss) / 2**20)
                except psutil.Error:
                    break
                time.sleep(0.01)
            code = proc.wait()
        times.append(time.perf_counter() - t0)
        if code != 0:
            raise SystemExit(f"benchmark step failed: {' '.join(cmd)}")
        peaks.append(peak)
    return statistics.median(times), max(peaks), statistics.median(cpus) if cpus else None


def child_env() -> dict[str, str]:
    """The environment of every measured process: the repository importable, bytecode cached as
    after `pip install` (a machine that sets PYTHONDONTWRITEBYTECODE would recompile every module
    at every start and charge that to whichever contender imports most)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def installed_indicators() -> list[str]:
    """Every indicator the project would run (the built-ins and any installed plugin)."""
    from indicator_core.plugins import collect_indicators, make_plugin_manager

    return sorted(collect_indicators(make_plugin_manager()))


def config(path: Path, enabled: list[str]) -> Path:
    """A config that runs exactly ``enabled``: the other indicators (whales, poor levels, ...) are turned off."""
    lines = []
    for name in [*INDICATORS, *(n for n in installed_indicators() if n not in INDICATORS)]:
        lines.append(f"[plugins.{name}]\nenabled = {'true' if name in enabled else 'false'}\n")
    path.write_text("\n".join(lines))
    return path


def fresh_vault(work: Path, name: str, raw: Path) -> Path:
    vault = work / name
    shutil.rmtree(vault, ignore_errors=True)
    target = vault / "raw" / "trades" / "okx" / "perps"
    target.mkdir(parents=True)
    try:
        (target / INST).symlink_to(raw, target_is_directory=True)
    except OSError:  # no symlinks (Windows without the privilege): copy
        shutil.copytree(raw, target / INST)
    return vault


def dataset(work: Path, n: int, seed: int) -> Path:
    """Generate in a child process, so this process stays small (a child's peak counts its fork)."""
    raw = work / f"data-{n}-{seed}" / INST
    marker = raw.parent / "done"
    if not marker.exists():
        shutil.rmtree(raw.parent, ignore_errors=True)
        print(f"generating {n:,} trades ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(raw), "--trades", str(n), "--seed", str(seed)],
                       check=True)
        marker.write_text("ok")
    return raw


def pass_seconds(stats: Path) -> float:
    """The pass alone: the interpreter's start, the imports and loading the plugins excluded."""
    return json.loads(stats.read_text())["pass_seconds"]


def project(vault: Path, cfg: Path) -> list[str]:
    return [sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config", str(cfg), "--quiet",
            "--stats", str(vault / "stats.json")]


def incremental(work: Path, raw: Path, n: int, name: str, seed: int, repeat: int, record) -> tuple[Path, Path, Path]:
    """(6): process a copy of ``raw``, append 1% more trades, then time the run over them ``repeat`` times
    from the same saved state (the median; short and noisy).  Returns the vault, its trades and config."""
    inc_raw = work / f"{name}-raw" / INST
    shutil.rmtree(inc_raw.parent, ignore_errors=True)
    shutil.copytree(raw, inc_raw)
    vault = fresh_vault(work, name, inc_raw)
    cfg = config(work / f"{name}.toml", INDICATORS)
    subprocess.run(project(vault, cfg), env=child_env(), check=True)
    subprocess.run([sys.executable, str(HERE / "generate.py"), str(inc_raw), "--seed", str(seed + 1),
                    "--append", str(max(n // 100, 1))], check=True)
    saved = work / f"{name}-saved"
    shutil.rmtree(saved, ignore_errors=True)
    for part in ("state", "derived"):
        shutil.copytree(vault / part, saved / part)
    times, peaks, inner = [], [], []
    for _ in range(repeat):
        for part in ("state", "derived"):
            shutil.rmtree(vault / part)
            shutil.copytree(saved / part, vault / part)
        if hasattr(os, "sync"):
            os.sync()  # the restored copies on disk, as after a real earlier run: the run's fsyncs write only its own bytes
        t, p = measure(project(vault, cfg), 1)
        times.append(t)
        peaks.append(p)
        inner.append(pass_seconds(vault / "stats.json"))
    record(name, statistics.median(times), max(peaks), statistics.median(inner))
    return vault, inc_raw, cfg


def reject_heavy(work: Path, n: int, seed: int) -> Path:
    """``n`` trades spread over 3.7 days, all in the file of the first day: an exporter that never rolled its
    file; ~73% of its lines are outside that day and are refused."""
    raw = work / f"rejects-{n}-{seed}" / INST
    if not (raw.parent / "done").exists():
        shutil.rmtree(raw.parent, ignore_errors=True)
        subprocess.run([sys.executable, "-c", (
            "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from generate import generate, lines, START_MS; n = int(sys.argv[2]); c = generate(n, int(sys.argv[3])); "
            "c['ts'] = START_MS + np.arange(n, dtype=np.int64) * int(3.7 * 86_400_000) // n; "
            "out = Path(sys.argv[4]); out.mkdir(parents=True); "
            "open(out / 'trades_2024-11-23.jsonl', 'w', newline='\\n').writelines(lines(c))"),
            str(HERE), str(n), str(seed), str(raw)], check=True)
        (raw.parent / "done").write_text("ok")
    return raw


def out_of_order(work: Path, raw: Path, name: str, twice: bool) -> Path:
    """The day files of ``raw`` with each one's middle third moved to its end (a block of trades that came late,
    filling the gap its absence opened), or (``twice``) with each one's lines twice (a file read twice: a block of
    duplicates)."""
    out = work / f"{name}-{raw.parent.name}" / INST
    if not (out.parent / "done").exists():
        shutil.rmtree(out.parent, ignore_errors=True)
        out.mkdir(parents=True)
        for day in sorted(raw.glob("*.jsonl")):
            lines = day.read_bytes().splitlines(keepends=True)
            third = len(lines) // 3
            body = lines + lines if twice else lines[:third] + lines[2 * third:] + lines[third:2 * third]
            (out / day.name).write_bytes(b"".join(body))
        (out.parent / "done").write_text("ok")
    return out


def hard_days(args: argparse.Namespace, work: Path, five: Path) -> dict:
    """The days a new user meets that used to fall off, each as a ratio measured in this run: a whale-heavy
    day (a $4,000 whale threshold: ~12% of the trades are whales) against the same day with the default one,
    4M lines of which ~73% are refused for their time against 4M accepted ones, the pure path (no compiled
    kernel) against the compiled one, the 1M day with a block of late trades and read twice against it in
    order, and the command's import time."""
    py = sys.executable
    raw1, raw4 = dataset(work, 1_000_000, args.seed), dataset(work, 4_000_000, args.seed)
    whales = config(work / "whales.toml", [*INDICATORS, "whales"])
    heavy = work / "whales_heavy.toml"
    heavy.write_text(whales.read_text().replace("[plugins.whales]\nenabled = true",
                                                '[plugins.whales]\nenabled = true\nthreshold = "4000"'))
    out: dict = {}

    def best(*runs: tuple[Path, Path, dict | None]) -> list[float]:
        """The best time of each of ``runs`` (data, config, environment), run in turn ``repeat`` times: the
        two sides of a ratio meet the machine's moods alike."""
        times: list[list[float]] = [[] for _ in runs]
        for _ in range(args.repeat):
            for k, (raw, cfg, env_extra) in enumerate(runs):
                vault = fresh_vault(work, "hard", raw)
                env = {**child_env(), **(env_extra or {})}
                t0 = time.perf_counter()
                subprocess.run(project(vault, cfg), env=env, check=True, stdout=subprocess.DEVNULL)
                times[k].append(time.perf_counter() - t0)
        return [min(t) for t in times]

    normal, whale_heavy = best((raw1, whales, None), (raw1, heavy, None))
    out["whale_ratio"] = round(whale_heavy / normal, 3)
    accepted, refused = best((raw4, five, None), (reject_heavy(work, 4_000_000, args.seed), five, None))
    out["reject_ratio"] = round(refused / accepted, 3)
    pure, compiled = best((raw1, five, {"INDICATOR_CORE_PURE": "1"}), (raw1, five, None))
    out["pure_ratio"] = round(pure / compiled, 3)
    in_order, moved, doubled = best((raw1, five, None), (out_of_order(work, raw1, "late", False), five, None),
                                    (out_of_order(work, raw1, "twice", True), five, None))
    out["late_ratio"], out["twice_ratio"] = round(moved / in_order, 3), round(doubled / in_order, 3)
    imports, startups, bare = [], [], []
    # what the command loads before it reads its arguments (its entry point's set-up and modules), and all that a
    # run loads before its first trade: that, numpy and the pass's modules, the plugins, the config validated
    load = "from indicator_core.command import load; load()"
    startup = (f"{load}\nimport indicator_core.runtime.batch\nfrom pathlib import Path\n"
               "from indicator_core.config import load_config, plugin_settings\n"
               "from indicator_core.plugins import collect_indicators, make_plugin_manager\n"
               "found = collect_indicators(make_plugin_manager())\n"
               f"plugin_settings(load_config(Path({str(five)!r})), {{n: i.cls for n, i in found.items()}})")
    for _ in range(max(5, args.repeat)):
        for cmd, into in (([py, "-c", load], imports), ([py, "-c", startup], startups), ([py, "-c", "pass"], bare)):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=child_env(), check=True)
            into.append(time.perf_counter() - t0)
    out["import_seconds"] = round(statistics.median(imports) - statistics.median(bare), 3)
    out["startup_seconds"] = round(statistics.median(startups) - statistics.median(bare), 3)
    print(f"  whale-heavy 1M day {whale_heavy:.2f} s vs {normal:.2f} s: {out['whale_ratio']:.2f}x (aim <= 1.2)")
    print(f"  4M lines, 73% refused for their time {refused:.2f} s vs 4M accepted {accepted:.2f} s: "
          f"{out['reject_ratio']:.2f}x (aim <= 3)")
    print(f"  pure path (INDICATOR_CORE_PURE=1) {pure:.2f} s vs compiled {compiled:.2f} s on 1M: "
          f"{out['pure_ratio']:.2f}x (aim <= 1.5)")
    print(f"  1M with each day's middle third last (a third of the trades late) {moved:.2f} s, each day's lines twice "
          f"(half of them duplicates) {doubled:.2f} s, vs in order {in_order:.2f} s: {out['late_ratio']:.2f}x and "
          f"{out['twice_ratio']:.2f}x")
    print(f"  import of the command: {out['import_seconds']:.3f} s beyond the interpreter's start (aim <= 0.15); "
          f"a run's whole start-up before its first trade (with numpy, the plugins and the config): "
          f"{out['startup_seconds']:.3f} s", flush=True)
    return out


def contenders(args: argparse.Namespace, work: Path) -> None:
    """The table of the project against DuckDB and polars, and the --jobs speed-up; ratios measured in this run."""
    py = sys.executable
    sizes = [1_000_000, 4_000_000]
    rows: dict[str, dict] = {}
    five = config(work / "all_five.toml", INDICATORS)
    for n in sizes:
        raw = dataset(work, n, args.seed)
        mib = sum(p.stat().st_size for p in raw.glob("*.jsonl")) / 2**20
        print(f"{n:,} trades, {mib:.0f} MiB of JSONL", flush=True)
        subprocess.run(project(fresh_vault(work, "warm", raw), five), env=child_env(), check=True,
                       stdout=subprocess.DEVNULL)  # the files in the page cache for every contender
        row = rows[str(n)] = {"mib": round(mib)}
        contenders_here = []
        for name, script in (("duckdb", "duckdb_script.py"), ("polars", "polars_script.py")):
            try:
                __import__(name)
            except ImportError:
                print(f"  {name} skipped: pip install -e '.[bench]'")
                continue
            contenders_here.append((name, [py, str(HERE / script), str(raw)]))
        times, peaks, inner, cpus = [], [], [], []
        theirs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in contenders_here}
        for _ in range(args.repeat):  # one run of each in turn: the machine's moods fall on all of them alike
            vault = fresh_vault(work, "contender", raw)
            t, p, c = measure_cpu(project(vault, five), 1)
            times.append(t)
            peaks.append(p)
            cpus.append(c or 0.0)
            inner.append(pass_seconds(vault / "stats.json"))
            for name, cmd in contenders_here:
                t, p, c = measure_cpu(cmd, 1)
                theirs[name].append((t, p, c or 0.0))
        row["project"] = {"seconds": round(statistics.median(times), 3), "peak_mib": round(max(peaks), 1),
                          "cpu_seconds": round(statistics.median(cpus), 3),
                          "pass_seconds": round(statistics.median(inner), 3)}
        for name, runs in theirs.items():
            row[name] = {"seconds": round(statistics.median(r[0] for r in runs), 3),
                         "peak_mib": round(max(r[1] for r in runs), 1),
                         "cpu_seconds": round(statistics.median(r[2] for r in runs), 3)}
        for name in ("project", "duckdb", "polars"):
            if name in row:
                print(f"  {name:<8} {row[name]['seconds']:7.2f} s  {row[name]['peak_mib']:8.1f} MiB  "
                      f"CPU {row[name]['cpu_seconds']:.2f} s", flush=True)

    extras = hard_days(args, work, five)

    # --jobs: eight instruments of 1M trades each (the same day under eight market folders of OKX: the exchange
    # folder names the venue format that reads it)
    raw = dataset(work, sizes[0], args.seed)
    jobs: dict[int, float] = {}
    jobs_cpu: dict[int, float] = {}
    for j in (1, 2):
        times, cpus = [], []
        for _ in range(args.repeat):
            vault = work / "jobs"
            shutil.rmtree(vault, ignore_errors=True)
            for k in range(8):
                target = vault / "raw" / "trades" / "okx" / f"perps{k}"
                target.mkdir(parents=True)
                try:
                    (target / INST).symlink_to(raw, target_is_directory=True)
                except OSError:
                    shutil.copytree(raw, target / INST)
            t, _, c = measure_cpu(project(vault, five) + ["--jobs", str(j)], 1)
            times.append(t)
            cpus.append(c or 0.0)
        jobs[j] = statistics.median(times)
        jobs_cpu[j] = statistics.median(cpus)
    speedup = jobs[1] / jobs[2]

    def cell(n: int, name: str) -> str:
        r = rows[str(n)].get(name)
        return f"{r['seconds']:.2f} s" if r else "-"

    def peak(name: str) -> str:
        r = rows[str(sizes[-1])].get(name)
        return f"{r['peak_mib']:,.0f} MiB" if r else "-"

    print(f"\n{'':<40} | {'1M trades':>10} | {'4M trades':>10} | peak memory at 4M (1M)")
    for name, label in (("project", "indicators run, all five indicators"),
                        ("duckdb", "DuckDB: read_json + GROUP BY minute"),
                        ("polars", "polars: scan_ndjson + group_by")):
        small = rows[str(sizes[0])].get(name)
        print(f"{label:<40} | {cell(sizes[0], name):>10} | {cell(sizes[1], name):>10} | {peak(name)}"
              f" ({small['peak_mib']:,.0f} MiB)" if small else "")
    print("\nratios, measured in this run (the machine is shared: read these, not the seconds)")
    targets = {}
    for n in sizes:
        r = rows[str(n)]
        pr = r["project"]["seconds"]
        parts = []
        if "duckdb" in r:
            parts.append(f"project / DuckDB = {pr / r['duckdb']['seconds']:.2f}")
        if "polars" in r:
            parts.append(f"polars / project = {r['polars']['seconds'] / pr:.2f}")
        if "duckdb" in r and r["duckdb"]["cpu_seconds"]:
            parts.append(f"CPU time project / DuckDB = {r['project']['cpu_seconds'] / r['duckdb']['cpu_seconds']:.2f}")
        print(f"  {n:>9,} trades: " + ", ".join(parts))
    print(f"  8 instruments x 1M trades: --jobs 1 {jobs[1]:.2f} s, --jobs 2 {jobs[2]:.2f} s, speed-up {speedup:.2f}x "
          f"(CPU time {jobs_cpu[1]:.2f} s and {jobs_cpu[2]:.2f} s; a fork server's workers are not counted)")
    if jobs_cpu[1]:
        # --jobs 1 reads and parses in threads beside its main thread: it already keeps more than one core busy,
        # and --jobs 2 can only add what is left of the cores
        busy = jobs_cpu[1] / jobs[1]
        cores = os.cpu_count() or 1
        print(f"    --jobs 1 keeps {busy:.2f} cores busy (CPU {jobs_cpu[1]:.2f} s over {jobs[1]:.2f} s): on {cores} "
              f"cores --jobs 2 can gain at most {min(cores, cores / busy):.2f}x, however well it spreads the work")
    if hasattr(os, "getloadavg"):
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        note = ("above the core count: other processes took part of the cores and the wall times mean little"
                if load > cores else "at most the core count")
        print(f"  load average at the end: {load:.1f} on {cores} cores ({note})")
    r1, r4 = rows[str(sizes[0])], rows[str(sizes[1])]
    if "duckdb" in r4:
        targets["4M: project <= DuckDB"] = r4["project"]["seconds"] <= r4["duckdb"]["seconds"]
    if "polars" in r4:
        targets["4M: project 2x faster than polars"] = 2 * r4["project"]["seconds"] <= r4["polars"]["seconds"]
    if "duckdb" in r1:
        targets["1M: project <= 1.2 x DuckDB"] = r1["project"]["seconds"] <= 1.2 * r1["duckdb"]["seconds"]
    if "polars" in r1:
        targets["1M: project 1.3x faster than polars"] = 1.3 * r1["project"]["seconds"] <= r1["polars"]["seconds"]
    targets["peak memory < 150 MiB at 4M"] = r4["project"]["peak_mib"] < 150
    targets["peak memory flat (4M <= 1.25 x 1M)"] = r4["project"]["peak_mib"] <= 1.25 * r1["project"]["peak_mib"]
    targets["--jobs 2 >= 1.8 x --jobs 1 (8 x 1M)"] = speedup >= 1.8
    targets["1M: DuckDB / project >= 1.2"] = "duckdb" in r1 and r1["duckdb"]["seconds"] >= 1.2 * r1["project"]["seconds"]
    targets["4M: DuckDB / project >= 2.0"] = "duckdb" in r4 and r4["duckdb"]["seconds"] >= 2.0 * r4["project"]["seconds"]
    targets["whale-heavy day <= 1.2 x a normal one (1M)"] = extras["whale_ratio"] <= 1.2
    targets["4M rejected lines <= 3 x 4M accepted"] = extras["reject_ratio"] <= 3.0
    targets["import of the command <= 0.15 s"] = extras["import_seconds"] <= 0.15
    targets["pure path <= 1.5 x compiled (1M)"] = extras["pure_ratio"] <= 1.5
    print()
    for name, ok in targets.items():
        print(f"  {'met ' if ok else 'MISSED'}  {name}")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "repeat": args.repeat,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "rows": rows, "hard_days": extras, "jobs_seconds": jobs, "jobs_cpu_seconds": jobs_cpu, "jobs_speedup": round(speedup, 3),
        "targets": targets,
    }
    out = args.out.parent / "contenders.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--flat", type=int, default=0, help="also measure (4) on this many trades (memory flatness)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    ap.add_argument("--contenders", action="store_true",
                    help="the project against DuckDB and polars on 1M and 4M trades, and the --jobs speed-up")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.contenders:
        return contenders(args, work)
    raw = dataset(work, args.trades, args.seed)
    n = args.trades
    py = sys.executable
    rows: dict[str, dict] = {}

    def record(key: str, label: str, seconds: float, peak: float) -> None:
        rows[key] = {"label": label, "seconds": round(seconds, 3), "trades_per_s": round(n / seconds), "peak_mib": round(peak, 1)}
        print(f"  {label:<44} {seconds:8.2f} s  {n / seconds / 1e6:6.2f} M trades/s  {peak:8.1f} MiB", flush=True)

    print(f"{n:,} trades, {sum(p.stat().st_size for p in raw.glob('*.jsonl')) / 2**20:.0f} MiB of JSONL")
    # one run first, so that every contender finds the files in the page cache
    subprocess.run(project(fresh_vault(work, "warm", raw), config(work / "warm.toml", INDICATORS)) + ["--inst", INST],
                   env=child_env(), check=True, stdout=subprocess.DEVNULL)

    record("parse_floor", "(1) parse floor: orjson.loads per line", *measure([py, str(HERE / "parse_floor.py"), str(raw)], args.repeat))
    try:
        import polars  # noqa: F401

        record("polars", "(2) polars script (read_ndjson, group by)", *measure([py, str(HERE / "polars_script.py"), str(raw)], args.repeat))
    except ImportError:
        print("  (2) skipped: pip install polars")

    def one_pass(key: str, label: str, enabled: list[str]) -> None:
        times, peaks, inner = [], [], []
        for _ in range(args.repeat):
            vault = fresh_vault(work, key, raw)
            t, p = measure(project(vault, config(work / f"{key}.toml", enabled)), 1)
            times.append(t)
            peaks.append(p)
            inner.append(pass_seconds(vault / "stats.json"))
        record(key, label, statistics.median(times), max(peaks))
        rows[key]["pass_seconds"] = round(statistics.median(inner), 3)

    one_pass("volume_only", "(3) project, volume analyzer alone", ["volume"])
    one_pass("all_five", "(4) project, all five indicators", INDICATORS)

    totals, peak = [], 0.0
    for _ in range(args.repeat):
        total = 0.0
        for name in INDICATORS:
            vault = fresh_vault(work, f"sep_{name}", raw)  # each repetition starts from nothing
            t, p = measure(project(vault, config(work / f"sep_{name}.toml", [name])), 1)
            total += t
            peak = max(peak, p)
        totals.append(total)
    record("five_separate", "(5) five separate runs, one indicator each", statistics.median(totals), peak)

    # (6): a processed vault, then 1% more trades appended to the last day file
    def record_incremental(key: str, seconds: float, peak: float, inner: float) -> None:
        record(key, "(6) incremental run after appending 1%", seconds, peak)
        rows[key]["pass_seconds"] = round(inner, 4)

    vault, inc_raw, cfg = incremental(work, raw, n, "incremental", args.seed, max(args.repeat, 3), record_incremental)

    # (7): the same 1% read by a running follower (`run --follow`): no start-up, states already in memory
    follow_out = subprocess.run([py, str(HERE / "follow_pass.py"), str(vault), str(cfg), str(inc_raw), str(n),
                                 str(args.seed + 2)], env=child_env(), check=True, capture_output=True,
                                text=True).stdout.split()
    follow_s, follow_n, follow_commit_s = float(follow_out[0]), int(follow_out[1]), float(follow_out[2])
    rows["follow_pass"] = {"label": "(7) a running follower's pass over the next 1%", "seconds": round(follow_s, 4),
                           "trades_per_s": round(follow_n / follow_s), "peak_mib": None,
                           "committing_pass_seconds": round(follow_commit_s, 4)}
    print(f"  {rows['follow_pass']['label']:<44} {follow_s:8.3f} s  (a pass that also commits: "
          f"{follow_commit_s:.3f} s)", flush=True)

    if args.flat:
        big = dataset(work, args.flat, args.seed)
        flat_vault = fresh_vault(work, "flat", big)
        t, p = measure(project(flat_vault, config(work / "flat.toml", INDICATORS)), 1)
        rows["all_five_large"] = {"label": f"(4) all five on {args.flat:,} trades", "seconds": round(t, 3),
                                  "trades_per_s": round(args.flat / t), "peak_mib": round(p, 1)}
        rows["all_five_large"]["pass_seconds"] = round(pass_seconds(flat_vault / "stats.json"), 3)
        print(f"  (4) all five on {args.flat:,} trades: {t:.2f} s, {p:.1f} MiB", flush=True)

        def record_large(key: str, seconds: float, peak: float, inner: float) -> None:
            rows[key] = {"label": f"(6) incremental, 1% more on {args.flat:,}", "seconds": round(seconds, 3),
                         "trades_per_s": None, "peak_mib": round(peak, 1), "pass_seconds": round(inner, 4)}
            print(f"  (6) incremental after appending 1% to {args.flat:,} trades: {seconds:.2f} s "
                  f"(pass {inner * 1e3:.1f} ms), {peak:.1f} MiB", flush=True)

        incremental(work, big, args.flat, "incremental_large", args.seed, max(args.repeat, 3), record_large)
        try:
            import polars  # noqa: F401

            t2, p2 = measure([py, str(HERE / "polars_script.py"), str(big)], 1)
            rows["polars_large"] = {"label": f"(2) polars on {args.flat:,} trades", "seconds": round(t2, 3),
                                    "trades_per_s": round(args.flat / t2), "peak_mib": round(p2, 1)}
            print(f"  (2) polars on {args.flat:,} trades: {t2:.2f} s, {p2:.1f} MiB", flush=True)
        except ImportError:
            pass

    floor = rows["parse_floor"]["seconds"]
    polars_s = rows.get("polars", {}).get("seconds")
    print(f"\n{'':<44} {'x parse floor':>14} {'x polars':>10}")
    for key, row in rows.items():
        row["vs_parse_floor"] = round(row["seconds"] / floor, 3)
        row["vs_polars"] = round(row["seconds"] / polars_s, 3) if polars_s else None
        print(f"  {row['label']:<42} {row['vs_parse_floor']:>14.2f} {row['vs_polars'] if row['vs_polars'] is not None else '-':>10}")
    inc = rows["incremental"]
    print(f"\n  (6) incremental pass, start-up excluded: {inc['pass_seconds']:.3f} s = "
          f"{inc['pass_seconds'] / rows['all_five']['pass_seconds']:.1%} of the full pass "
          f"({rows['all_five']['pass_seconds']:.2f} s); the process start-up is the rest of its {inc['seconds']:.2f} s")
    if "incremental_large" in rows:
        big_inc, big_full = rows["incremental_large"]["pass_seconds"], rows["all_five_large"]["pass_seconds"]
        print(f"  the same on {args.flat:,} trades: {big_inc:.3f} s = {big_inc / big_full:.1%} of the full pass "
              f"({big_full:.2f} s)")
    targets = {
        "all_five <= polars (time)": polars_s is not None and rows["all_five"]["seconds"] <= polars_s,
        "all_five <= 1.2 x volume_only": rows["all_five"]["seconds"] <= 1.2 * rows["volume_only"]["seconds"],
        "incremental <= 2% of all_five (process)": inc["seconds"] <= 0.02 * rows["all_five"]["seconds"],
        "incremental <= 2% of all_five (pass)": inc["pass_seconds"] <= 0.02 * rows["all_five"]["pass_seconds"],
        "follower's incremental pass <= 2% of all_five (pass)": rows["follow_pass"]["seconds"] <= 0.02 * rows["all_five"]["pass_seconds"],
        "peak(all_five) < peak(polars) / 2": "polars" in rows and rows["all_five"]["peak_mib"] < rows["polars"]["peak_mib"] / 2,
    }
    if "all_five_large" in rows:
        targets["peak flat: large <= 1.25 x small"] = rows["all_five_large"]["peak_mib"] <= 1.25 * rows["all_five"]["peak_mib"]
    if "incremental_large" in rows:
        targets["incremental <= 2% of all_five (pass), large file"] = (
            rows["incremental_large"]["pass_seconds"] <= 0.02 * rows["all_five_large"]["pass_seconds"])
    if "polars_large" in rows:
        targets["all_five <= polars (time), large file"] = rows["all_five_large"]["seconds"] <= rows["polars_large"]["seconds"]
    print()
    for name, ok in targets.items():
        print(f"  {'met ' if ok else 'MISSED'}  {name}")
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trades": n, "repeat": args.repeat, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "rows": rows, "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    (args.out.parent / f"{result['when'][:10]}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
