"""The ``study`` and ``chart`` subcommands (SPEC sections 13 and 14).

Kept apart from ``cli.py`` so the command line only grows by two entries; the
work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError


def add_parsers(sub) -> None:
    s = sub.add_parser("study", help="what happened after each signal: forward returns against a baseline")
    s.add_argument("--vault", type=Path, required=True)
    s.add_argument("--inst", action="append", metavar="INST_ID", help="only this instrument (repeatable)")
    s.add_argument("--signal", action="append", metavar="NAME",
                   help="absorption, divergence, tier:T1..tier:T4, whale, liq_long, liq_short, oi_surge, stacked_ask, "
                        "stacked_bid, unfinished_high, unfinished_low, naked_poc_test, and the "
                        "signal outputs with a direction (confluence) (repeatable; default all)")
    s.add_argument("--horizons", default="1,5,15,60", help="minutes after the signal, comma separated")
    s.add_argument("--from", dest="from_", metavar="T", help="first signal minute, UTC (2024-11-23[T14:05])")
    s.add_argument("--to", metavar="T", help="signals before this minute, UTC (exclusive)")
    s.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    s.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")

    b = sub.add_parser("backtest", help="paper execution of the signals on the recorded trades ([backtest.NAME])")
    b.add_argument("--vault", type=Path, required=True)
    b.add_argument("--config", type=Path, required=True, metavar="FILE", help="the config file with [backtest.NAME]")
    b.add_argument("--strategy", action="append", metavar="NAME", help="only this strategy (repeatable)")
    b.add_argument("--inst", action="append", metavar="INST_ID", help="only this instrument (repeatable)")
    b.add_argument("--from", dest="from_", metavar="T", help="first signal minute, UTC (2024-11-23[T14:05])")
    b.add_argument("--to", metavar="T", help="signals before this minute, UTC (exclusive)")
    b.add_argument("--json", action="store_true", help="print the summaries as a JSON array")
    b.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")
    b.add_argument("--jobs", type=int, default=1, metavar="N", help="instruments on N worker processes (default 1)")
    b.add_argument("--scheduler", metavar="ADDRESS", help="instruments as tasks on a Dask cluster (tcp://HOST:8786)")

    c = sub.add_parser("chart", help="one self-contained HTML chart of an instrument's outputs")
    c.add_argument("--vault", type=Path, required=True)
    c.add_argument("--inst", required=True, metavar="INST_ID")
    c.add_argument("--from", dest="from_", metavar="T", help="first minute, UTC (2024-11-23[T14:05])")
    c.add_argument("--to", metavar="T", help="up to this minute, UTC (exclusive)")
    c.add_argument("--tf", default="1m", help="bar timeframe: 1m 5m 15m 1h 4h 1d (default 1m)")
    c.add_argument("--out", type=Path, metavar="FILE", help="output file (default: chart_{INST}_{tf}.html)")
    c.add_argument("--footprint", action="store_true",
                   help="the footprint view: each bar's rows coloured by delta, POC and imbalances marked, candles "
                        "as outlines over them (needs [plugins.footprint] enabled)")


def _vault(path: Path) -> Path:
    if not path.is_dir():
        raise ConfigError(f"--vault {path}: no such folder")
    return path


def _range(args) -> tuple[int | None, int | None]:
    from .vault import parse_time

    lo = parse_time(args.from_, "--from") if args.from_ else None
    hi = parse_time(args.to, "--to") if args.to else None
    if lo is not None and hi is not None and hi <= lo:
        raise ConfigError(f"--to {args.to} is not after --from {args.from_}")
    return lo, hi


def cmd_study(args: argparse.Namespace) -> int:
    import orjson

    from .study import format_table, parse_horizons, run_study

    vault = _vault(args.vault)
    horizons = parse_horizons(args.horizons)
    lo, hi = _range(args)
    study = run_study(vault, args.inst, args.signal, horizons, lo, hi, want_paths=args.html is not None)
    text = orjson.dumps(study.rows, option=orjson.OPT_INDENT_2).decode() if args.json else format_table(study)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `indicators study | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if args.html:
        from .study_html import write_report

        write_report(study, args.html, vault)
        print(f"report written to {args.html}", file=sys.stderr)
    return 0


def cmd_chart(args: argparse.Namespace) -> int:
    from .chart import write_chart

    vault = _vault(args.vault)
    lo, hi = _range(args)
    out = args.out or Path(f"chart_{args.inst}_{args.tf}.html")
    info = write_chart(vault, args.inst, lo, hi, args.tf, out, footprint_view=args.footprint)
    print(f"chart written to {out}: {info}", file=sys.stderr)
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    import orjson

    from ..config import load_config
    from .backtest import format_rows, run_backtest, write_html

    vault = _vault(args.vault)
    cfg = load_config(args.config)
    lo, hi = _range(args)
    kept: dict = {}
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more worker processes")
    rows = run_backtest(vault, cfg, args.strategy, args.inst, lo, hi, kept, jobs=args.jobs, scheduler=args.scheduler)
    text = orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() if args.json else format_rows(rows)
    sys.stdout.write(text + "\n")
    if args.html:
        write_html(args.html, rows, kept, vault)
        print(f"report written to {args.html}", file=sys.stderr)
    return 0
