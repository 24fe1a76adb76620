"""The command line: ``indicators run | plugins | status | reset``.

Exit status (SPEC section 9): 0 done; 2 bad usage or bad config; 1 a failure
while running.  Messages go to stderr and say what is wrong and where.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import orjson

from . import __version__
from .config import Config, load_config, plugin_settings
from .errors import ConfigError, IndicatorError
from .lock import InstrumentLocks
from .storage import InstrumentKey


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with the usage, as argparse does, but via ConfigError
        self.print_usage(sys.stderr)
        raise ConfigError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="indicators", description="Run trade-tick indicators in one exact, resumable pass.")
    p.add_argument("--version", action="version", version=f"indicator-core {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="one pass over the trades, all enabled indicators, from the saved state")
    r.add_argument("--vault", type=Path, help="the vault folder (default: `vault` in the config)")
    r.add_argument("--config", type=Path, help="TOML config file (default: SPEC defaults, all indicators)")
    r.add_argument("--inst", action="append", metavar="INST_ID", help="only this instrument (repeatable)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    r.add_argument("--stats", type=Path, metavar="FILE", help="also write the run's counts and timings as JSON")
    r.add_argument("--follow", action="store_true",
                   help="keep running: read appended lines every --poll seconds; stop with Ctrl-C")
    r.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="follow mode: time between passes")
    r.add_argument("--grace", type=float, default=5.0, metavar="SECONDS",
                   help="follow mode: close a bar this long after its end even if no later trade came")
    r.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="instruments processed at once, each in its own worker process (default: the number of cores)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the instruments on a Dask cluster, e.g. tcp://HOST:8786 (the vault on a shared filesystem)")

    pl = sub.add_parser("plugins", help="installed indicator plugins, versions, origin, enabled or not")
    pl.add_argument("--config", type=Path)
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")

    st = sub.add_parser("status", help="cursor, last bar and data-quality counts per instrument and indicator")
    st.add_argument("--vault", type=Path)
    st.add_argument("--config", type=Path)
    st.add_argument("--json", action="store_true")

    rs = sub.add_parser("reset", help="delete an indicator's outputs and state so the next run rebuilds it")
    rs.add_argument("--vault", type=Path)
    rs.add_argument("--config", type=Path)
    rs.add_argument("--indicator", required=True, action="append", help="indicator name (repeatable), or 'all'")
    rs.add_argument("--inst", action="append", metavar="INST_ID", help="only this instrument (repeatable)")
    return p


def _vault(args: argparse.Namespace, cfg: Config) -> Path:
    vault = args.vault or cfg.vault
    if vault is None:
        raise ConfigError("no vault: pass --vault DIR or set vault = \"DIR\" in the config file")
    if not vault.is_dir():
        raise ConfigError(f"--vault {vault}: no such folder")
    return vault


def cmd_run(args: argparse.Namespace) -> int:
    from .engine import follow, run
    from .parallel import default_jobs
    from .progress import no_progress, terminal_progress

    cfg = load_config(args.config)
    vault = _vault(args, cfg)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more worker processes")
    if args.follow:
        if args.jobs is not None or args.scheduler is not None:
            raise ConfigError("--follow takes no --jobs or --scheduler: to spread a live vault over cores, start one "
                              "follower per group of instruments, each with its own --inst options")
        if args.poll <= 0 or args.grace < 0:
            raise ConfigError("--poll must be > 0 and --grace >= 0 (seconds)")
        _stop_on_sigterm()

        def report(summary) -> None:
            if not args.quiet and summary.total("lines"):
                print(f"{time.strftime('%H:%M:%S')} {summary.total('trades')} trades, "
                      f"{summary.total('bars')} bars, {summary.total('rejects')} rejects", flush=True)

        try:
            follow(vault, cfg, args.inst, args.poll, args.grace, on_pass=report)
        except KeyboardInterrupt:
            print("stopped: outputs and state are as of the last commit; the next run continues from there", file=sys.stderr)
        return 0
    started = time.perf_counter()
    summary = run(vault, cfg, args.inst, progress=no_progress if args.quiet else terminal_progress,
                  jobs=args.jobs or default_jobs(), scheduler=args.scheduler)
    if args.stats:
        args.stats.write_text(orjson.dumps({
            "seconds": time.perf_counter() - started,
            "load_seconds": summary.load_seconds,
            "pass_seconds": summary.pass_seconds,
            "instruments": {s.key.label: {**s.counters, "seconds": s.seconds, "error": s.error}
                            for s in summary.instruments},
        }, option=orjson.OPT_INDENT_2).decode())
    if not args.quiet:
        for s in summary.instruments:
            c = s.counters
            if s.error is not None:
                print(f"{s.key.label}: FAILED (see below)")
                continue
            print(
                f"{s.key.label}: {c['trades']} trades ({c['lines']} lines), {c['bars']} bars closed, "
                f"{c['duplicates']} duplicates, {c['gaps']} gaps, {c['late']} late, {c['rejects']} rejects"
            )
        print(
            f"done: {len(summary.instruments)} instruments, {summary.total('trades')} trades, "
            f"{summary.total('bars')} bars written, {summary.total('rejects')} rejects"
            + (f", {len(summary.failed)} failed" if summary.failed else "")
        )
    for s in summary.failed:  # always shown, --quiet or not
        print(f"error: {s.error}", file=sys.stderr)
    return max((s.status for s in summary.failed), default=0)


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import collect_indicators, make_plugin_manager

    cfg = load_config(args.config)
    pm = make_plugin_manager()
    infos = collect_indicators(pm)
    settings = plugin_settings(cfg, {n: i.cls for n, i in infos.items()})
    rows = []
    for name, info in sorted(infos.items()):
        hooks = sorted(h.name for h in pm.get_hookcallers(pm.get_plugin(info.plugin_name)) or [])
        rows.append({
            "name": name,
            "version": info.cls.version,
            "plugin": info.plugin_name,
            "module": info.cls.__module__,
            "source": info.source,
            "enabled": settings[name].enabled,
            "hooks": hooks,
        })
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"{'name':<12} {'version':<8} {'enabled':<8} {'source':<28} module")
        for r in rows:
            print(f"{r['name']:<12} {r['version']:<8} {str(r['enabled']).lower():<8} {r['source']:<28} {r['module']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .storage import read_state

    cfg = load_config(args.config)
    vault = _vault(args, cfg)
    rows = []
    for path in sorted((vault / "state").glob("*/*/*/*.state.json")):
        state = read_state(path)
        if state is None:
            continue
        indicator, exchange, market = path.parts[-4:-1]
        counters = state.get("stream", {}).get("counters", {})
        cur = state.get("cursor", {})
        rows.append({
            "instrument": f"{exchange}/{market}/{state.get('inst_id')}",
            "indicator": indicator,
            "cursor": f"{cur.get('file')}:{cur.get('offset')} (line {cur.get('line')})",
            "last_bar_utc": state.get("last_bar_utc"),
            **{k: counters.get(k, 0) for k in ("trades", "duplicates", "gaps", "missing_ids", "late", "rejects")},
        })
    rows.sort(key=lambda r: (r["instrument"], r["indicator"]))
    if args.json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        print(f"no state under {vault / 'state'}: nothing has run yet")
    else:
        head = f"{'instrument':<30} {'indicator':<10} {'last bar':<21} {'trades':>10} {'dup':>6} {'gaps':>5} {'late':>5} {'rejects':>7}  cursor"
        print(head)
        for r in rows:
            print(
                f"{r['instrument']:<30} {r['indicator']:<10} {str(r['last_bar_utc']):<21} {r['trades']:>10} "
                f"{r['duplicates']:>6} {r['gaps']:>5} {r['late']:>5} {r['rejects']:>7}  {r['cursor']}"
            )
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    vault = _vault(args, cfg)
    names = args.indicator
    if "all" in names:
        found: set[str] = set()
        for top in (vault / "state", vault / "derived"):
            if top.is_dir():
                found |= {p.name for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")}
        names = sorted(found)
    items: list[tuple[InstrumentKey, Path]] = []
    for name in names:
        for top in (vault / "derived" / name, vault / "state" / name):
            if not top.is_dir():
                continue
            for exchange in sorted(p for p in top.iterdir() if p.is_dir()):
                for market in sorted(p for p in exchange.iterdir() if p.is_dir()):
                    for item in sorted(market.iterdir()):
                        inst = item.name.removesuffix(".state.json")
                        if args.inst and inst not in args.inst:
                            continue
                        items.append((InstrumentKey(exchange.name, market.name, inst), item))
    # every instrument it touches is locked first: a run on one of them refuses the reset, and nothing is removed
    with InstrumentLocks(vault) as locks:
        for key in sorted({k for k, _ in items}, key=lambda k: k.label):
            locks.acquire(key)
        for _, item in items:
            if item.is_dir():
                shutil.rmtree(item)
            elif item.exists():
                item.unlink()
    print(f"reset {', '.join(names)}: removed {len(items)} output folders and state files; the next run rebuilds them")
    return 0


def _stop_on_sigterm() -> None:
    """Let SIGTERM stop follow mode like Ctrl-C does."""
    import signal

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handler)


COMMANDS = {"run": cmd_run, "plugins": cmd_plugins, "status": cmd_status, "reset": cmd_reset}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except IndicatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("interrupted: outputs and state are as of the last commit; run again to continue", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
