"""The command line: ``indicators run | plugins | status | reset | notify | study | chart``.

Exit status (SPEC section 9): 0 done; 2 bad usage or bad config; 1 a failure
while running.  Messages go to stderr and say what is wrong and where.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import orjson

from . import __version__
from .config import Config, load_config, plugin_settings
from .errors import ConfigError, IndicatorError, os_error_message
from .lock import InstrumentLocks, VaultLock
from .report import commands as report_commands


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
                   help="keep running: read appended lines as soon as they are written; stop with Ctrl-C")
    r.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                   help="follow mode: longest wait between passes (a pass starts at once on a file-system event)")
    r.add_argument("--no-watch", action="store_true",
                   help="follow mode: no file-system notifications, a pass every --poll seconds only")
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
    rs.add_argument("--dry-run", action="store_true", help="only list what would be deleted")

    nt = sub.add_parser("notify", help="deliver the committed signals the notifiers of the config have not delivered yet")
    nt.add_argument("--vault", type=Path)
    nt.add_argument("--config", type=Path)
    nt.add_argument("--wait", type=float, metavar="SECONDS",
                    help="retry a failing notifier this long (default: its wait_seconds)")

    rec = sub.add_parser("record", help="record the venues' public streams of [record] into the vault's raw files; "
                                        "stop with Ctrl-C")
    rec.add_argument("--vault", type=Path)
    rec.add_argument("--config", type=Path, required=True, help="TOML config with a [record] table")
    rec.add_argument("--quiet", "-q", action="store_true", help="no status line")
    rec.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds (default: run until Ctrl-C)")
    rec.add_argument("--stats", type=Path, metavar="FILE", help="write the counts and receive-to-disk delays as JSON at the end")

    lv = sub.add_parser("live", help="`record` and `run --follow` in one command, one status line; stop with Ctrl-C")
    lv.add_argument("--vault", type=Path)
    lv.add_argument("--config", type=Path, required=True, help="TOML config with a [record] table")
    lv.add_argument("--quiet", "-q", action="store_true", help="no status line")
    lv.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="as for run --follow")
    lv.add_argument("--no-watch", action="store_true", help="as for run --follow")
    lv.add_argument("--grace", type=float, default=5.0, metavar="SECONDS", help="as for run --follow")

    report_commands.add_parsers(sub)  # study, chart
    return p


def _vault(args: argparse.Namespace, cfg: Config, inputs: bool = False) -> Path:
    """The vault folder; nothing is ever created in a folder that is not one.

    With ``inputs``, the trades folder must be there too (``run``), so that a
    mistyped ``--vault`` fails before the run takes its lock in ``state/``.
    """
    vault = args.vault or cfg.vault
    if vault is None:
        raise ConfigError("no vault: pass --vault DIR or set vault = \"DIR\" in the config file")
    if not vault.is_dir():
        where = "--vault" if args.vault else f"{cfg.source}: vault ="
        raise ConfigError(f"{where} {vault}: no such folder; nothing was created (check the path)")
    root = vault / cfg.input.root
    if inputs and not root.is_dir() and not _any_input(vault, cfg):  # books (any kind) alone make a vault too
        raise ConfigError(
            f"{vault} is not a vault: it has no trades folder {root}; nothing was created. Check --vault, or put "
            f"trade files in {root}/{{exchange}}/{{market}}/{{INST_ID}}/ (e.g. "
            "okx/perps/BTC-USDT-SWAP/trades_2026-11-23.jsonl), or set [input] root in the config"
        )
    return vault


def _any_input(vault: Path, cfg: Config) -> bool:
    """Whether the vault holds the folder of any input kind (loaded only when the trades folder is missing)."""
    from .plugins import collect_input_kinds, make_plugin_manager

    return any((vault / kind.root(cfg)).is_dir() for kind in collect_input_kinds(make_plugin_manager()).values()
               if kind.reads_files)


def cmd_run(args: argparse.Namespace) -> int:
    from .runtime.batch import run
    from .runtime.follow import follow
    from .runtime.parallel import default_jobs
    from .progress import no_progress, terminal_progress

    cfg = load_config(args.config)
    vault = _vault(args, cfg, inputs=True)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more worker processes")
    if args.jobs is not None and args.scheduler is not None:
        raise ConfigError(f"--jobs {args.jobs} and --scheduler {args.scheduler}: give one of them; --jobs runs the "
                          "instruments on this machine's cores, --scheduler on the Dask cluster's workers (as many "
                          "at once as the cluster has worker threads)")
    if args.follow and (args.jobs is not None or args.scheduler is not None):
        raise ConfigError("--follow takes no --jobs or --scheduler: to spread a live vault over cores, start one "
                          "follower per group of instruments, each with its own --inst options")
    notifiers = {name: n for name, n in cfg.notify.items() if n.enabled}
    deliverer = None
    if cfg.notify:  # every [notify.NAME] table, enabled or not, names signal streams the indicators declare
        from .signals import check_streams, installed_streams

        streams = installed_streams()
        check_streams(cfg, streams)
    if notifiers:  # imported only then: urllib, ssl and http are a noticeable share of a short run's start
        from . import notify

        deliverer = notify.Deliverer(vault, notifiers, streams)
        with VaultLock(vault):
            deliverer.prepare()  # new notifiers start at what is committed before this pass
    if args.follow:
        from .console import FollowStatus

        if args.poll <= 0 or args.grace < 0:
            raise ConfigError("--poll must be > 0 and --grace >= 0 (seconds)")
        _stop_on_sigterm()
        status = None if args.quiet else FollowStatus(sys.stdout, extra=getattr(args, "status_extra", None))
        thread = None
        if deliverer is not None:
            thread = notify.DeliveryThread(deliverer)
            thread.start()

        def on_pass(summary) -> None:
            if summary.skipped and status is not None and status.open_line:  # the list goes below the status line
                status.out.write("\n")
                status.open_line, status.shown = False, 0
            _report_skipped(summary, cfg)
            _print_failures(summary)  # each once: a failed instrument or indicator is out of the later passes
            if status is not None:
                status.update(summary)

        try:
            follow(vault, cfg, args.inst, args.poll, args.grace, on_pass=on_pass,
                   on_commit=thread.committed if thread is not None else None,
                   commit_now=frozenset(streams[s].folder for n in notifiers.values() for s in n.streams),
                   watch=not args.no_watch)
        except KeyboardInterrupt:
            if status:
                status.close()
            print("stopped: outputs and state are as of the last commit; the next run continues from there", file=sys.stderr)
        finally:
            if status:
                status.close()
            if thread is not None:
                notify.report(thread.stop(min(n.wait_seconds for n in notifiers.values())), sys.stderr)
        return 0
    started = time.perf_counter()
    summary = run(vault, cfg, args.inst, progress=no_progress if args.quiet else terminal_progress,
                  jobs=args.jobs or default_jobs(), scheduler=args.scheduler)
    _report_skipped(summary, cfg)
    if deliverer is not None:
        _deliver(vault, deliverer, None)
    if args.stats:
        try:
            args.stats.write_text(orjson.dumps({
                "seconds": time.perf_counter() - started,
                "load_seconds": summary.load_seconds,
                "pass_seconds": summary.pass_seconds,
                "instruments": {summary.label(s): {**s.counters, "seconds": s.seconds, "error": s.error}
                                for s in summary.instruments},
                "failures": [{"instrument": key.label, **f.to_json()} for key, f in summary.failures],
            }, option=orjson.OPT_INDENT_2).decode())
        except OSError as exc:
            raise ConfigError(os_error_message(exc, "--stats: cannot write the file", after="the run itself is committed")) from exc
    if not args.quiet:
        for s in summary.instruments:
            label = summary.label(s)
            if s.stopped:
                print(f"{label}: not processed, see below")
                continue
            failed = sorted({f.indicator for f in s.failures if f.indicator})
            kind = summary.kinds.get(s.kind)
            line = kind.summary_line(s.counters) if kind is not None else f"{s.counters.get('minutes', 0)} minutes written"
            print(f"{label}: {line}" + (f"; failed: {', '.join(failed)}" if failed else ""))
        print(
            f"done: {len({s.key for s in summary.instruments})} instruments, "
            + "".join(kind.summary_totals(summary.total) for kind in summary.kinds.values())
            + f"{summary.total('rejects')} rejects"
            + (f", {len(summary.failed)} failed" if summary.failed else "")
        )
    return _print_failures(summary)


def _print_failures(summary) -> int:
    """The run's failures with their fixes, on stderr; 1 if there were any ("needs attention"), else 0."""
    failures = summary.failures
    if not failures:
        return 0
    for key, f in failures:
        head = "needs attention" if f.kind == "backfill" else "error"
        fix = f.fix.replace("\n", "\n  ")
        print(f"{head}: {f.message}\n  fix: {fix}", file=sys.stderr)
    instruments = len({key for key, _ in failures})
    if summary.stopped is not None:
        print("the run stopped there: outputs and state are as of the last commit", file=sys.stderr)
    else:
        print(f"needs attention: {len(failures)} problem{'s' if len(failures) != 1 else ''} in {instruments} "
              f"instrument{'s' if instruments != 1 else ''} (above); everything else is done", file=sys.stderr)
    return max((s.status for s in summary.failed), default=1)  # 2: refused (another run holds an instrument)


def _report_skipped(summary, cfg: Config) -> None:
    """Files and folders under the trades folder that were not read: listed once, to stderr (not an error)."""
    if summary.skipped:
        from .sources.files import describe_skipped

        print(describe_skipped(summary.skipped, cfg.input.patterns, cfg.input.root), file=sys.stderr, flush=True)


def _deliver(vault: Path, deliverer, wait: float | None) -> bool:
    """Deliver what is committed under the vault lock; True when nothing is left."""
    from . import notify
    from .errors import LockedError

    try:
        with VaultLock(vault):
            summary = deliverer.drain(wait)
    except LockedError:
        print("notify: another run holds the vault now; it delivers the signals", file=sys.stderr)
        return True
    notify.report(summary, sys.stderr)
    return not summary.pending


def cmd_notify(args: argparse.Namespace) -> int:
    from . import notify

    cfg = load_config(args.config)
    vault = _vault(args, cfg)
    notifiers = notify.active(cfg)
    if not notifiers:
        raise ConfigError(f"{cfg.source}: no [notify.NAME] table is enabled; see the README for an example")
    if args.wait is not None and args.wait < 0:
        raise ConfigError("--wait must be >= 0 (seconds)")
    streams = notify.installed_streams()
    notify.check_streams(cfg, streams)
    deliverer = notify.Deliverer(vault, notifiers, streams)
    with VaultLock(vault):
        deliverer.prepare()
        summary = deliverer.drain(args.wait)
    notify.report(summary, sys.stderr)
    print(f"delivered {summary.delivered} records; {sum(summary.pending.values())} pending", file=sys.stderr)
    return 1 if summary.pending else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import collect_indicators, collect_input_kinds, collect_venue_formats, make_plugin_manager

    cfg = load_config(args.config)
    pm = make_plugin_manager()
    kinds = collect_input_kinds(pm)
    infos = collect_indicators(pm, kinds)
    settings = plugin_settings(cfg, {n: i.cls for n, i in infos.items()})
    from .signals import check_streams, signal_streams

    check_streams(cfg, signal_streams({n: i.cls for n, i in infos.items()}))
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
    notifiers = []
    if cfg.notify:
        from .notify import describe  # (urllib and the senders: loaded only when there is a notifier to describe)

        notifiers = [{"name": f"notify.{name}", "notifier": name, "kind": n.kind, "target": describe(n),
                      "streams": n.streams, "enabled": n.enabled} for name, n in sorted(cfg.notify.items())]
    formats = [{"name": f"format.{i.fmt.name}", "format": i.fmt.name, "exchange": i.fmt.exchange, "kind": i.fmt.kind,
                "files": list(i.fmt.suffixes), "source": i.source, "description": i.fmt.description, "enabled": True}
               for i in collect_venue_formats(pm)]
    inputs = [{"name": f"input.{k.name}", "input": k.name, "root": k.root(cfg) if k.reads_files else None,
               "venue_formats": k.venue_formats, "enabled": True}
              for k in kinds.values()]
    if args.json:
        print(orjson.dumps(rows + notifiers + formats + inputs, option=orjson.OPT_INDENT_2).decode())
    else:
        _table(["name", "version", "enabled", "source", "module"],
               [[r["name"], r["version"], str(r["enabled"]).lower(), r["source"], r["module"]] for r in rows])
        if notifiers:
            print()
            _table(["notifier", "kind", "enabled", "streams", "target"],
                   [[n["notifier"], n["kind"], str(n["enabled"]).lower(), ", ".join(n["streams"]), n["target"]]
                    for n in notifiers])
        print()
        _table(["input", "root", "venue formats"],
               [[k["input"], k["root"] or "(other outputs)",
                 ", ".join(f["format"] for f in formats if f["kind"] == k["input"]) or "-"] for k in inputs])
        print()
        _table(["format", "exchange", "files", "source", "what"],
               [[f["format"], f["exchange"], " ".join(f["files"]), f["source"], f["description"]] for f in formats])
        from . import native

        print(f"\n{native.describe()}")
    return 0


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print ``rows`` under ``headers``, each column as wide as its widest cell (the last one unpadded)."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        print(" ".join(f"{str(x):<{w}}" for x, w in zip(row[:-1], widths)) + " " + str(row[-1]))


def _status_row(vault: Path, path: Path, cfg: Config, host) -> dict:
    """One state file as a row of `indicators status`; a damaged one as a row with its error and its fix.

    The row's kind is the one its file name's suffix names (a quality log's), else the one its indicator
    consumes; the kind gives its fields (:meth:`StreamKind.status_fields`)."""
    from .errors import StateError
    from .storage import InstrumentKey, read_state

    indicator, exchange, market = path.parts[-4:-1]
    inst = path.name.removesuffix(".state.json")
    kind = next((k for k in host.kinds.values() if k.state_suffix and inst.endswith(k.state_suffix)), None)
    if kind is not None:
        inst = inst.removesuffix(kind.state_suffix)
    else:  # known before the state is read, for a damaged state's row
        cls = host.indicators.get(indicator)
        kind = host.kinds.get(cls.consumes if cls is not None else "", next(iter(host.kinds.values())))
    row = {"instrument": f"{exchange}/{market}/{inst}", "indicator": indicator, "kind": kind.name}
    try:
        state = read_state(path)
        if state is None:
            return {}
        stream = state.get("stream") or {}
        cur = state.get("cursor", {})
        reads = stream.get("inputs")  # a record consumer: bytes read of each input
        row["cursor"] = (", ".join(f"{k} byte {v.get('offset')}" for k, v in reads.items()) if reads is not None
                         else f"{cur.get('file')}:{cur.get('offset')} (line {cur.get('line')})")
        row.update(kind.status_fields(state, cfg, vault, InstrumentKey(exchange, market, inst)))
    except (StateError, AttributeError, TypeError, ValueError) as exc:
        error = str(exc) if isinstance(exc, StateError) else f"state file {path} is damaged ({exc!r})"
        row.update({
            "error": error.split("\n")[0],
            "reset": f"indicators reset --vault {_quoted(str(vault))} --indicator {indicator} --inst {_quoted(inst)}",
        })
    return row


def cmd_status(args: argparse.Namespace) -> int:
    from .runtime.host import Host

    cfg = load_config(args.config)
    vault = _vault(args, cfg)
    host = Host.load(cfg)
    order = list(host.kinds)
    rows = [r for r in (_status_row(vault, p, cfg, host) for p in sorted((vault / "state").glob("*/*/*/*.state.json")))
            if r]
    rows.sort(key=lambda r: (r["instrument"], order.index(r["kind"]), r["indicator"]))
    damaged = [r for r in rows if "error" in r]
    from .notify import status_rows
    from .signals import check_streams, signal_streams
    from .runtime.records import describe_waits

    streams = signal_streams(host.indicators)
    check_streams(cfg, streams)
    deliveries = [{"indicator": "notify", **r} for r in status_rows(vault, cfg, streams)]
    waits = describe_waits(vault, cfg, host)  # record consumers held back by an input (SPEC section 12)
    for r in rows:
        r["waiting"] = waits.get((r["instrument"], r["indicator"]))
    if args.json:
        print(orjson.dumps(rows + deliveries, option=orjson.OPT_INDENT_2).decode())
    elif not rows:
        print(f"no state under {vault / 'state'}: nothing has run yet")
    else:
        printed = False
        for kind in host.kinds.values():
            of_kind = [r for r in rows if r["kind"] == kind.name]
            if of_kind:
                if printed:
                    print()
                _status_table(kind, of_kind)
                printed = True
        for label in dict.fromkeys(r["instrument"] for r in rows if r.get("gaps_judged") is False):
            print(f"{label}: its trade ids are not integers (Bybit): duplicates are recognised by id near their "
                  "minute, gaps are never judged")
        for r in rows:
            if r.get("waiting"):
                print(f"{r['instrument']}: {r['waiting']}")
        for r in damaged:
            print(f"\n{r['instrument']} {r['indicator']}: {r['error']}\n  to rebuild it: {r['reset']}")
        _print_backfill(vault, rows)
        if deliveries:
            print()
            _table(["notifier", "stream", "instrument", "delivered", "pending", "last signal id"],
                   [[d["notifier"], d["stream"], d["instrument"], f"{d['delivered']:>9}", f"{d['pending']:>7}",
                     d["last_signal_id"] or "-"] for d in deliveries])
    if damaged:
        print(f"{len(damaged)} damaged state file(s): the runs leave those indicators out until they are restored "
              "or reset (commands above)", file=sys.stderr)
        return 1
    return 0


def _status_table(kind, rows: list[dict]) -> None:
    """One input kind's rows of `indicators status`, in the columns the kind declares."""
    def cell(value, spec: str) -> str:
        if value is None:  # (no bar closed yet, nothing read yet)
            value = "-"
        return format(str(value).lower() if isinstance(value, bool) else (value if isinstance(value, int) else str(value)), spec)

    wide = max(len("instrument"), *(len(r["instrument"]) for r in rows))
    named = max(len(kind.status_title), *(len(r["indicator"]) for r in rows))
    print(f"{'instrument':<{wide}} {kind.status_title:<{named}} "
          + " ".join(format(head, spec) for head, _, spec in kind.status_columns) + "  cursor")
    for r in rows:
        if "error" in r:
            print(f"{r['instrument']:<{wide}} {r['indicator']:<{named}} DAMAGED STATE (see below)")
            continue
        print(f"{r['instrument']:<{wide}} {r['indicator']:<{named}} "
              + " ".join(cell(r[key], spec) for _, key, spec in kind.status_columns) + f"  {r['cursor']}")


def _print_backfill(vault: Path, rows: list[dict]) -> None:
    from . import integrity

    late: dict[str, list[str]] = {}
    for r in rows:
        for name in r.get("backfill", ()):
            if name not in late.setdefault(r["instrument"], []):
                late[r["instrument"]].append(name)
    for label, names in late.items():
        if names:
            print(f"\nneeds attention: {integrity.backfill_message(label, names)}\n"
                  f"  fix: {integrity.backfill_fix(vault, label.rsplit('/', 1)[1])}")


def cmd_reset(args: argparse.Namespace) -> int:
    from . import reset
    from .plugins import collect_indicators, collect_input_kinds, make_plugin_manager

    cfg = load_config(args.config)
    vault = _vault(args, cfg)
    pm = make_plugin_manager()
    kinds = collect_input_kinds(pm)
    suffixes = tuple(k.state_suffix for k in kinds.values())
    # every name is checked before anything is touched
    names = reset.check_indicators(args.indicator, set(collect_indicators(pm, kinds)))
    names = names + [c for c in with_consumers(cfg, names) if c not in names]  # consumers follow their producers
    insts = reset.check_instruments(args.inst, vault, [k.root(cfg) for k in kinds.values() if k.reads_files], suffixes)
    scope = f" for {', '.join(sorted(insts))}" if insts else ""
    if not reset.plan(vault, names, insts, suffixes).files:
        print(f"reset {', '.join(names)}{scope}: nothing to delete (no outputs and no state)")
        return 0
    if args.dry_run:
        _list_reset(reset.plan(vault, names, insts, suffixes), vault, f"reset {', '.join(names)}{scope}: would delete")
        return 0
    # every instrument it touches is locked first: a run on one of them refuses the reset before anything is removed
    with InstrumentLocks(vault) as locks:
        for key in reset.instruments_of(vault, reset.plan(vault, names, insts, suffixes), suffixes):
            locks.acquire(key)
        todo = reset.plan(vault, names, insts, suffixes)
        _list_reset(todo, vault, f"reset {', '.join(names)}{scope}: deleting")
        deleted = reset.execute(todo)
    print(f"deleted {deleted} files; the next run rebuilds {', '.join(names)}{scope} from the start of their input")
    return 0


def _list_reset(todo, vault: Path, head: str) -> None:
    print(f"{head} {len(todo.files)} files:")
    for f in todo.files:
        print(f"  {_shown(f, vault)}")
    for f in todo.kept:
        print(f"  (keeping {_shown(f, vault)}: not an output or state file of these indicators)")
    sys.stdout.flush()


def _quoted(arg: str) -> str:
    """An argument as typed in a shell: in double quotes when it holds a space (cmd, PowerShell and sh alike)."""
    return f'"{arg}"' if any(c.isspace() for c in arg) or not arg else arg


def _shown(path: Path, vault: Path) -> str:
    return str(path.relative_to(vault)) if path.is_relative_to(vault) else str(path)


def with_consumers(cfg: Config, names: list[str]) -> list[str]:
    """The indicators that read the records of ``names`` (SPEC section 12): resetting a producer resets them.

    Says which on stdout; returns their names, to be reset with ``names``.
    """
    from .runtime.records import consumers_of

    extra = consumers_of(cfg, names)
    for consumer, producers in extra.items():
        print(f"also resetting {consumer}: it reads the records of {', '.join(producers)}")
    return list(extra)


def _stop_on_sigterm() -> None:
    """Let SIGTERM stop follow mode like Ctrl-C does."""
    import signal

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, handler)


def _record_vault(args: argparse.Namespace, cfg: Config) -> Path:
    """The vault a recorder writes into: made if missing (recording is how a vault begins)."""
    vault = args.vault or cfg.vault
    if vault is None:
        raise ConfigError("no vault: pass --vault DIR or set vault = \"DIR\" in the config file")
    if vault.exists() and not vault.is_dir():
        raise ConfigError(f"{vault} is a file, not a folder: give the vault folder")
    vault.mkdir(parents=True, exist_ok=True)
    return vault


def cmd_record(args: argparse.Namespace) -> int:
    from .record.runner import RecorderThread

    cfg = load_config(args.config)
    vault = _record_vault(args, cfg)
    _stop_on_sigterm()
    thread = RecorderThread(vault, cfg, keep_delays=args.stats is not None)
    rec = thread.recorder
    started = last_line = time.monotonic()
    shown = 0
    tty = sys.stderr.isatty() and not args.quiet
    thread.start()
    try:
        while thread.is_alive():
            thread.join(1.0)
            now = time.monotonic()
            if args.seconds is not None and now - started >= args.seconds:
                break
            if tty:  # one line, rewritten in place
                text = rec.status()
                sys.stderr.write("\r" + text + " " * max(0, shown - len(text)))
                sys.stderr.flush()
                shown = len(text)
            elif not args.quiet and now - last_line >= 60:  # into a file or a pipe: a line a minute
                print(time.strftime("%H:%M:%S ") + rec.status(), file=sys.stderr, flush=True)
                last_line = now
    except KeyboardInterrupt:
        pass
    finally:
        thread.stop()
        if tty:
            sys.stderr.write("\n")
    if thread.error is not None:
        raise thread.error
    if args.stats:
        delays = sorted(rec.counts.delays_ms)
        args.stats.write_text(orjson.dumps({
            "seconds": time.monotonic() - started, **{k: v for k, v in vars(rec.counts).items() if k != "delays_ms"},
            "receive_to_disk_ms": {"median": delays[len(delays) // 2] if delays else None,
                                   "p99": delays[int(len(delays) * 0.99)] if delays else None, "n": len(delays)},
        }, option=orjson.OPT_INDENT_2).decode())
    if not args.quiet:
        print(rec.status() + "; stopped with every received push on disk", file=sys.stderr)
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    """The recorder in a thread, the follower of `run --follow` in this one; Ctrl-C stops both."""
    from .record.runner import RecorderThread

    cfg = load_config(args.config)
    vault = _record_vault(args, cfg)
    thread = RecorderThread(vault, cfg)
    thread.start()
    thread.ready.wait(30)
    if thread.error is not None:
        raise thread.error
    for kind_root in (cfg.input.root,):  # the follower needs its trades folder before the first push lands
        (vault / kind_root).mkdir(parents=True, exist_ok=True)
    run_args = argparse.Namespace(
        config=args.config, vault=vault, inst=None, quiet=args.quiet, stats=None, follow=True, poll=args.poll,
        no_watch=args.no_watch, grace=args.grace, jobs=None, scheduler=None, status_extra=thread.recorder.status)
    try:
        return cmd_run(run_args)
    finally:
        thread.stop()
        if not args.quiet:
            print(thread.recorder.status() + "; stopped with every received push on disk", file=sys.stderr)
        if thread.error is not None:
            raise thread.error


COMMANDS = {"run": cmd_run, "plugins": cmd_plugins, "status": cmd_status, "reset": cmd_reset, "notify": cmd_notify,
            "study": report_commands.cmd_study, "chart": report_commands.cmd_chart,
            "backtest": report_commands.cmd_backtest, "record": cmd_record, "live": cmd_live}


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
    except BrokenPipeError:
        # Only the command's own output is a pipe it writes to and lets fail (files raise no EPIPE; a notifier's
        # socket or child pipe is caught where it is written): the reader went away (`indicators plugins | head`)
        # and wants no more.  Like a shell tool's, the command ends quietly, with the status of a process that a
        # SIGPIPE stopped; what is left in the output's buffer goes nowhere.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 128 + 13
    except OSError as exc:  # a read-only folder, a full disk, a file where a folder should be, ...
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 1


def console() -> None:
    """The command line (entered through :mod:`indicator_core.command`): :func:`main`, then a quick exit.

    When a command has returned, everything it wrote is closed, and committed with fsync where it is
    an output or a state; what Python would still do at exit is tear down the modules and objects of
    numpy and pydantic one by one, 60-90 ms, a sixth of a short run.  So the process leaves at once
    with the command's status, once its own output is flushed.  An exception (a usage error's
    ``SystemExit`` included) and a process under a profiler or a tracer (cProfile, coverage) exit the
    usual way, so that they report.
    """
    status = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`indicators status | head`) or a closed stream
            pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    console()
