"""``indicators backtest``: would acting on the signals have made money? (SPEC section 19)

A strategy (``[backtest.NAME]`` in the config) takes the committed signals of one kind, enters after the
latency at the first trade it could have taken, and exits on the recorded trades: at a stop, a target or
after ``max_hold_minutes``, one position at a time per instrument.  Fees and funding (from ``derivs_1m``
where the instrument has it) are charged; every figure of a trade comes from exact decimals.

Reading: the instrument's raw trade files are read once, a chunk at a time (memory flat), in stream
order, repeats of a trade id skipped; every latency of the sweep walks the same chunks side by side.

Fills: at the trade's price, or with ``fills = "book"`` by walking the recorded book as of the fill
(:class:`BookAt`, one reader per walk, the book stream of section 10 applying the pushes).  The
instruments run one after another, on worker processes (``--jobs``) or as tasks on a Dask cluster
(``--scheduler``); ``--html`` writes the report (:func:`write_html`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import orjson

from ..errors import ConfigError
from ..numbers import fmt, fmt_round
from ..storage import InstrumentKey, derived_dir, write_file_atomic
from ..timeutil import iso_minute, iso_ms, minute_of_iso
from .study import (DERIVS_SIGNALS, FOOTPRINT_SIGNALS, MINUTE_SIGNALS, add_derivs, add_footprint, bootstrap_ci,
                    load_prices)
from .vault import committed_records, select_instruments

SWEEP_MS = (0, 100, 250, 1000, 5000)
MINUTE_MS = 60_000
SUMMARY_KEYS = ("strategy", "inst_id", "latency_ms", "n", "win_rate", "mean_net_bp", "median_net_bp", "ci_low_bp",
                "ci_high_bp", "total_net_quote", "profit_factor", "max_drawdown_quote", "sharpe", "skipped", "open")


@dataclass(frozen=True)
class SignalEvent:
    known_ms: int  # when a bot could know it
    direction: int  # +1 long, -1 short
    signal_id: str


@dataclass
class Trade:
    signal_id: str
    direction: int
    entry_ts: int
    entry_px: Decimal
    exit_ts: int = 0
    exit_px: Decimal = Decimal(0)
    reason: str = ""
    best: Optional[Decimal] = None  # the highest and lowest trade prices after the entry, up to the exit
    worst: Optional[Decimal] = None
    fill: str = "trade"  # how the entry was filled: "book" (a walk of the recorded book) or "trade"
    exit_fill: str = "trade"


# --- signals ---------------------------------------------------------------------------------------------

def signals_of(vault: Path, key: InstrumentKey, strategy: Any) -> list[SignalEvent]:
    """The strategy's signals of one instrument, by the time they are known (SPEC 19)."""
    name = strategy.signal
    events: list[SignalEvent] = []
    if name == "confluence":
        for r in committed_records(vault, "confluence", key, "signals") or []:
            if strategy.min_score is not None and int(r.get("score") or 0) < strategy.min_score:
                continue
            if strategy.conviction and r.get("conviction") not in strategy.conviction:
                continue
            known = (minute_of_iso(r["timestamp_utc"]) + 1) * MINUTE_MS
            events.append(SignalEvent(known, 1 if r["direction"] == "long" else -1,
                                      f"{key.inst_id}|{r['timestamp_utc']}|{r['level']}"))
        return sorted(events, key=lambda e: e.known_ms)
    recs = committed_records(vault, "volume", key, "volume_1m") or []
    if not recs:
        return []
    p = load_prices(key, recs)
    if name in DERIVS_SIGNALS:
        add_derivs(p, committed_records(vault, "derivs", key, "derivs_1m") or [])
    if name in FOOTPRINT_SIGNALS:
        add_footprint(p, committed_records(vault, "footprint", key, "footprint_1m") or [],
                      committed_records(vault, "footprint", key, "naked_pocs") or [])
    if name not in p.flags:
        return []
    for i in np.flatnonzero(p.flags[name]).tolist():
        d = int(p.rule_dir[name][i])
        if d:
            ts = iso_minute(p.minute0 + i)
            events.append(SignalEvent((p.minute0 + i + 1) * MINUTE_MS, d, f"{key.inst_id}|{ts}|{name}"))
    return events


def funding_times(vault: Path, key: InstrumentKey) -> list[tuple[int, Decimal]]:
    """``(funding time ms, rate paid then)`` from ``derivs_1m``: the last rate known before each funding."""
    out: dict[int, Decimal] = {}
    for r in committed_records(vault, "derivs", key, "derivs_1m") or []:
        nxt, rate = r.get("next_funding_utc"), r.get("funding_rate")
        if nxt and rate is not None:
            t = minute_of_iso(nxt[:16] + ":00Z") * MINUTE_MS
            if minute_of_iso(r["timestamp_utc"]) * MINUTE_MS < t:
                out[t] = Decimal(rate)  # the minute's rate, the last one before the funding wins
    return sorted(out.items())


# --- the trades of the vault --------------------------------------------------------------------------------

def trade_chunks(vault: Path, key: InstrumentKey, host: Any) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """``(ts, px, px_scale)`` of the instrument's trades, a chunk at a time, in stream order, repeats of an id
    left out (as the indicators see them)."""
    from ..sources import parse
    from ..sources.files import Cursor, list_files, read_chunks
    from ..trade_batch import normalize

    cfg = host.cfg
    folder = vault / cfg.input.root / key.exchange / key.market / key.inst_id
    if not folder.is_dir():
        return
    files = list_files(folder, key.inst_id, cfg.input.patterns, [], cfg.input.day_offset_minutes(), host.formats,
                       "trades")
    recent = np.zeros(0, dtype=np.int64)  # the ids of the previous chunk's last two minutes
    for chunk in read_chunks(files, Cursor(), None, cfg.run.batch_bytes):
        p = parse(chunk, key.inst_id, cfg.input.day_tolerance_minutes)
        if not len(p):
            continue
        ids = p.trade_id.astype(np.int64)
        _, first = np.unique(ids, return_index=True)
        keep = np.zeros(len(ids), dtype=bool)
        keep[first] = True  # a repeat within the chunk: its first one stays
        if len(recent):
            keep &= ~np.isin(ids, recent)
        minute = p.ts // MINUTE_MS
        recent = ids[minute >= int(minute.max()) - 2]
        px, scale = normalize(p.px_m[keep], p.px_s[keep])
        yield p.ts[keep], px, scale


# --- the recorded book at an instant ----------------------------------------------------------------------

class BookAt:
    """The instrument's recorded book as of an instant: every push with a time at or before it applied, in
    file order, by the book stream of section 10 (sequence checks and all); asked at instants that never go
    back (one reader per walk)."""

    def __init__(self, vault: Path, key: InstrumentKey, host: Any, inst: Any) -> None:
        from ..sources.files import Cursor, list_files, read_chunks
        from ..streams.books import BOOKS

        cfg = host.cfg
        folder = vault / cfg.books.root / key.exchange / key.market / key.inst_id
        self.inst = inst
        self.stream = BOOKS.new_stream(inst, cfg)
        files = list_files(folder, key.inst_id, cfg.books.patterns, [], formats=host.formats, kind="books") \
            if folder.is_dir() else []
        parse = BOOKS.parser(cfg, key.inst_id)
        self._items = (item for chunk in read_chunks(files, Cursor(), None, cfg.run.batch_bytes)
                       for item in parse(chunk))
        self._next: Any = None
        self._sink = _Quiet()

    def at(self, ts: int) -> Any:
        """The book after every push with a time <= ``ts``; None while it is not valid."""
        from ..streams.okx_books import Push

        while True:
            if self._next is None:
                self._next = next(self._items, False)
            item = self._next
            if item is False or (type(item) is Push and item.ts > ts):
                break
            self._next = None
            if type(item) is Push:
                self.stream._push(item, "", self._sink)
        st = self.stream
        return st.book if st.book is not None and st.invalid is None else None

    def walk(self, ts: int, buy: bool, size_quote: Decimal) -> Decimal | None:
        """The volume-weighted price of taking ``size_quote`` from the book's asks (``buy``) or bids as of
        ``ts``, rounded half-even to 8 places (section 3); None without a valid book deep enough."""
        from fractions import Fraction

        from ..instruments import contract_amounts
        from ..numbers import div_round

        book = self.at(ts)
        if book is None:
            return None
        left, base = Fraction(size_quote), Fraction(0)  # exact: the quote taken at each level over its price
        for px, sz in (book.asks if buy else book.bids).decimals():
            _, lvl_quote = contract_amounts(self.inst, px, sz)
            take = min(left, Fraction(lvl_quote))
            base += take / Fraction(px)
            left -= take
            if not left:
                break
        if left or not base:
            return None
        vwap = Fraction(size_quote) / base
        return div_round(Decimal(vwap.numerator), Decimal(vwap.denominator), 8)


class _Quiet:
    """A book stream's sink that keeps nothing: the backtest wants the book, not its events."""

    def quality(self, event: dict[str, Any]) -> None:
        pass

    def book(self, minute: Any) -> None:
        pass

    def deliver(self, *args: Any, **kw: Any) -> None:
        pass


# --- one strategy, one latency -----------------------------------------------------------------------------

@dataclass
class Walk:
    """One strategy at one latency over one instrument's trades: the state of the position between chunks."""

    events: list[SignalEvent]
    latency_ms: int
    stop_bp: Optional[Decimal]
    target_bp: Optional[Decimal]
    hold_ms: int
    book: Optional[BookAt] = None  # fills = "book" where the instrument has books
    size_quote: Decimal = Decimal(10000)
    next_event: int = 0
    open: Optional[Trade] = None
    pending: Optional[SignalEvent] = None  # known, waiting for its entry trade
    closed: list[Trade] = field(default_factory=list)
    skipped: int = 0

    def feed(self, ts: np.ndarray, px: np.ndarray, scale: int) -> None:
        i, n = 0, len(ts)
        while i < n:
            if self.open is not None:
                i = self._exit(ts, px, scale, i)
                continue
            if self.pending is None:
                if self.next_event >= len(self.events):
                    return
                self.pending = self.events[self.next_event]
                self.next_event += 1
            start = self.pending.known_ms + self.latency_ms
            j = i + int(np.searchsorted(ts[i:], start, side="left")) if ts[-1] >= start else n
            while j < n and ts[j] < start:  # trades a little out of order: the first with ts >= start
                j += 1
            if j >= n:
                return
            e = self.pending
            self.pending = None
            entry = Decimal(int(px[j])).scaleb(-scale)
            fill = "trade"
            if self.book is not None:
                walked = self.book.walk(int(ts[j]), e.direction > 0, self.size_quote)
                if walked is not None:
                    entry, fill = walked, "book"
            self.open = Trade(e.signal_id, e.direction, int(ts[j]), entry, fill=fill)
            i = j + 1

    def _exit(self, ts: np.ndarray, px: np.ndarray, scale: int, i: int) -> int:
        t = self.open
        assert t is not None
        d = t.direction
        hits = []
        seg_px = px[i:]
        if len(seg_px) == 0:
            return i
        if self.stop_bp is not None:
            stop = t.entry_px * (1 - d * self.stop_bp / 10000)
            bound = stop.scaleb(scale)
            hit = seg_px <= int(bound.to_integral_value("ROUND_FLOOR")) if d > 0 else \
                seg_px >= int(bound.to_integral_value("ROUND_CEILING"))
            if hit.any():
                hits.append((int(np.argmax(hit)), 0, "stop"))
        if self.target_bp is not None:
            target = t.entry_px * (1 + d * self.target_bp / 10000)
            bound = target.scaleb(scale)
            hit = seg_px >= int(bound.to_integral_value("ROUND_CEILING")) if d > 0 else \
                seg_px <= int(bound.to_integral_value("ROUND_FLOOR"))
            if hit.any():
                hits.append((int(np.argmax(hit)), 1, "target"))
        late = np.flatnonzero(ts[i:] >= t.entry_ts + self.hold_ms)
        if late.size:
            hits.append((int(late[0]), 2, "time"))
        end = min(hits)[0] if hits else len(seg_px) - 1
        window = seg_px[:end + 1]
        hi, lo = Decimal(int(window.max())).scaleb(-scale), Decimal(int(window.min())).scaleb(-scale)
        t.best = hi if t.best is None else max(t.best, hi)
        t.worst = lo if t.worst is None else min(t.worst, lo)
        if not hits:
            return len(ts)
        k, _, reason = min(hits)  # at one trade a stop and a target cannot both be reached; stop before time
        j = i + k
        t.exit_ts, t.exit_px, t.reason = int(ts[j]), Decimal(int(px[j])).scaleb(-scale), reason
        if self.book is not None:  # the other side of the book, as for the entry
            walked = self.book.walk(t.exit_ts, d < 0, self.size_quote)
            if walked is not None:
                t.exit_px, t.exit_fill = walked, "book"
        self.closed.append(t)
        self.open = None
        # signals known before this exit trade were skipped: one position at a time
        while self.next_event < len(self.events) and self.events[self.next_event].known_ms + self.latency_ms <= t.exit_ts:
            self.next_event += 1
            self.skipped += 1
        return j + 1


# --- figures -----------------------------------------------------------------------------------------------

def trade_record(t: Trade, strategy: Any, funding: list[tuple[int, Decimal]]) -> tuple[dict[str, Any], Decimal]:
    d = Decimal(t.direction)
    ratio = t.exit_px / t.entry_px
    gross = d * (ratio - 1) * 10000
    fees = strategy.fee_taker_bp * (1 + ratio)
    paid = sum((rate for at, rate in funding if t.entry_ts < at <= t.exit_ts), Decimal(0))
    funding_bp = -d * paid * 10000
    net = gross - fees + funding_bp
    net_quote = strategy.size_quote * net / 10000
    assert t.best is not None and t.worst is not None  # the exit trade is one of them
    mfe = d * ((t.best if d > 0 else t.worst) / t.entry_px - 1) * 10000
    mae = d * ((t.worst if d > 0 else t.best) / t.entry_px - 1) * 10000
    return {
        "signal_id": t.signal_id, "direction": "long" if t.direction > 0 else "short", "fill": t.fill,
        "entry_utc": iso_ms(t.entry_ts), "entry_px": fmt(t.entry_px), "exit_utc": iso_ms(t.exit_ts),
        "exit_px": fmt(t.exit_px), "exit_reason": t.reason, "gross_bp": fmt_round(gross, 4),
        "fees_bp": fmt_round(fees, 4), "funding_bp": fmt_round(funding_bp, 4), "net_bp": fmt_round(net, 4),
        "net_quote": fmt_round(net_quote, 8), "mfe_bp": fmt_round(mfe, 4), "mae_bp": fmt_round(mae, 4),
    }, net


def summary(name: str, inst: str, latency: int, records: list[dict[str, Any]], skipped: int, open_: int) -> dict:
    net = [float(r["net_bp"]) for r in records]
    quote = [float(r["net_quote"]) for r in records]
    out: dict[str, Any] = dict.fromkeys(SUMMARY_KEYS)
    out.update(strategy=name, inst_id=inst, latency_ms=latency, n=len(records), skipped=skipped, open=open_)
    if not records:
        return out
    x = np.array(net)
    lo, hi = bootstrap_ci(x)
    wins, losses = sum(q for q in quote if q > 0), -sum(q for q in quote if q < 0)
    equity = np.cumsum(quote)
    drawdown = float(np.max(np.maximum.accumulate(np.concatenate(([0.0], equity)))[1:] - equity)) if len(equity) else 0.0
    days: dict[str, float] = {}
    for r in records:
        days[r["exit_utc"][:10]] = days.get(r["exit_utc"][:10], 0.0) + float(r["net_quote"])
    first, last = np.datetime64(min(days)), np.datetime64(max(days))
    daily = [days.get(str(first + k), 0.0) for k in range(int((last - first).astype(int)) + 1)]
    sd = statistics.pstdev(daily) if len(daily) > 1 else 0.0
    out.update(
        win_rate=round(sum(1 for v in net if v > 0) / len(net), 4), mean_net_bp=round(float(x.mean()), 4),
        median_net_bp=round(float(np.median(x)), 4), ci_low_bp=round(lo, 4), ci_high_bp=round(hi, 4),
        total_net_quote=round(float(sum(quote)), 8), profit_factor=round(wins / losses, 4) if losses else None,
        max_drawdown_quote=round(drawdown, 8),
        sharpe=round(statistics.mean(daily) / sd * 365 ** 0.5, 4) if sd else None,
    )
    return out


# --- the command ------------------------------------------------------------------------------------------

def run_backtest(vault: Path, cfg: Any, names: list[str] | None, insts: list[str] | None,
                 lo: int | None = None, hi: int | None = None, keep: dict | None = None,
                 jobs: int = 1, scheduler: Any = None) -> list[dict[str, Any]]:
    """Every strategy over every instrument: trades.jsonl written, the summaries returned (the configured
    latency first, then the sweep)."""
    from ..runtime.host import Host

    if not cfg.backtest:
        raise ConfigError(f"{cfg.source}: no [backtest.NAME] table: a strategy says which signal to trade, e.g.\n"
                          "[backtest.conf]\nsignal = \"confluence\"\nstop_bp = \"20\"\ntarget_bp = \"40\"")
    chosen = names or sorted(cfg.backtest)
    for n in chosen:
        if n not in cfg.backtest:
            raise ConfigError(f"--strategy {n}: no [backtest.{n}] table in {cfg.source} (found: "
                              f"{', '.join(sorted(cfg.backtest))})")
    known = set(MINUTE_SIGNALS) | set(DERIVS_SIGNALS) | set(FOOTPRINT_SIGNALS) | {"confluence"}
    for n in chosen:
        if cfg.backtest[n].signal not in known:
            raise ConfigError(f"{cfg.source}: backtest.{n}.signal: {cfg.backtest[n].signal!r} is not a signal; "
                              f"choose from {', '.join(sorted(known))}")
    keys = select_instruments(vault, insts)
    if scheduler is not None:  # instruments as tasks on a Dask cluster, as `indicators run --scheduler` does
        done = _on_dask(scheduler, [(vault, cfg, chosen, key, lo, hi) for key in keys])
    elif jobs > 1 and len(keys) > 1:  # instruments on worker processes, as `indicators run --jobs` does
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(keys))) as pool:
            done = list(pool.map(_instrument, *zip(*[(vault, cfg, chosen, key, lo, hi) for key in keys])))
    else:
        host = Host.load(cfg)
        done = [_instrument(vault, cfg, chosen, key, lo, hi, host) for key in keys]
    rows: list[dict[str, Any]] = []
    for got_rows, got_kept in done:  # in the instruments' order, whichever process ran them
        rows += got_rows
        if keep is not None:
            keep.update(got_kept)
    return rows


def _on_dask(scheduler: Any, calls: list[tuple]) -> list:
    """The instruments' tasks on the Dask scheduler at ``scheduler`` (an address), their results in order."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask's distributed package: pip install \"indicator-core[dask]\"") from None
    from ..errors import IndicatorError

    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise IndicatorError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from exc
    except ValueError as exc:
        raise ConfigError(f"--scheduler {scheduler}: not the address of a Dask scheduler ({exc}); give the one the "
                          "scheduler prints when it starts, e.g. tcp://HOST:8786") from exc
    try:
        futures = [client.submit(_instrument, *call, pure=False) for call in calls]
        return client.gather(futures)
    finally:
        client.close()


def _instrument(vault: Path, cfg: Any, chosen: list[str], key: InstrumentKey, lo: int | None, hi: int | None,
                host: Any = None) -> tuple[list[dict[str, Any]], dict]:
    """Every chosen strategy over one instrument: its trades.jsonl written, its summary rows and records."""
    if host is None:
        from ..runtime.host import Host

        host = Host.load(cfg)
    rows: list[dict[str, Any]] = []
    kept: dict = {}
    funding = funding_times(vault, key)
    inst = host.table.get(key.inst_id)
    books = vault / cfg.books.root / key.exchange / key.market / key.inst_id
    has_books = books.is_dir() and any(books.iterdir())
    walks: dict[tuple[str, int], Walk] = {}
    for n in chosen:
        s = cfg.backtest[n]
        events = [e for e in signals_of(vault, key, s)  # --from / --to: the signal's minute
                  if (lo is None or e.known_ms // MINUTE_MS - 1 >= lo) and (hi is None or e.known_ms // MINUTE_MS - 1 < hi)]
        for lat in dict.fromkeys((s.latency_ms, *SWEEP_MS)):
            book = BookAt(vault, key, host, inst) if s.fills == "book" and has_books else None
            walks[(n, lat)] = Walk(events, lat, s.stop_bp, s.target_bp, s.max_hold_minutes * MINUTE_MS, book,
                                   s.size_quote)
    for ts, px, scale in trade_chunks(vault, key, host):
        for w in walks.values():
            w.feed(ts, px, scale)
    for n in chosen:
        s = cfg.backtest[n]
        for lat in dict.fromkeys((s.latency_ms, *SWEEP_MS)):
            w = walks[(n, lat)]
            records = [trade_record(t, s, funding)[0] for t in w.closed]
            # undecided: a position without its exit, a signal waiting for its entry, those after it
            open_ = (w.open is not None) + (w.pending is not None) + len(w.events) - w.next_event
            if lat == s.latency_ms:
                kept[(n, key.inst_id)] = records
                folder = derived_dir(vault, f"backtest/{n}", key)
                folder.mkdir(parents=True, exist_ok=True)
                write_file_atomic(folder / "trades.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in records))
            rows.append({**summary(n, key.inst_id, lat, records, w.skipped, open_),
                         "sweep": lat != s.latency_ms})
    return rows, kept


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = (f"{'strategy':<12} {'instrument':<16} {'latency':>7} {'n':>5} {'win':>6} {'mean bp':>8} {'median':>8} "
            f"{'95% CI of mean':>18} {'net quote':>12} {'PF':>6} {'max DD':>10} {'sharpe':>7} {'skip':>5} {'open':>4}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def f(x, spec):
            return "-" if x is None else format(x, spec)
        ci = "-" if r["ci_low_bp"] is None else f"[{r['ci_low_bp']:+.2f}, {r['ci_high_bp']:+.2f}]"
        lines.append(f"{r['strategy']:<12} {r['inst_id']:<16} {r['latency_ms']:>6}{'*' if not r['sweep'] else ' '} "
                     f"{r['n']:>5} {f(r['win_rate'], '.1%'):>6} {f(r['mean_net_bp'], '+.2f'):>8} "
                     f"{f(r['median_net_bp'], '+.2f'):>8} {ci:>18} {f(r['total_net_quote'], '+.2f'):>12} "
                     f"{f(r['profit_factor'], '.2f'):>6} {f(r['max_drawdown_quote'], '.2f'):>10} "
                     f"{f(r['sharpe'], '+.2f'):>7} {r['skipped']:>5} {r['open']:>4}")
    lines.append("* the strategy's own latency (its trades are in derived/backtest/{NAME}/...); the others: the sweep")
    return "\n".join(lines)


# --- the report ------------------------------------------------------------------------------------------

def _svg_line(points: list[tuple[float, float]], w: int, h: int, color: str) -> str:
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys + [0.0]), max(ys + [0.0])
    sx = (w - 60) / ((x1 - x0) or 1)
    sy = (h - 30) / ((y1 - y0) or 1)
    pts = " ".join(f"{50 + (x - x0) * sx:.1f},{h - 15 - (y - y0) * sy:.1f}" for x, y in points)
    zero = h - 15 - (0 - y0) * sy
    return (f'<line x1="50" x2="{w - 10}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#475569" stroke-dasharray="4 4"/>'
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>'
            f'<text x="4" y="14" fill="#94a3b8" font-size="11">{y1:,.2f}</text>'
            f'<text x="4" y="{h - 4}" fill="#94a3b8" font-size="11">{y0:,.2f}</text>')


def write_html(path: Path, rows: list[dict[str, Any]], kept: dict, vault: Path) -> None:
    """A self-contained page: per strategy and instrument the equity curve (cumulative net quote at each
    exit), every trade's net bp against its entry time (green wins, red losses), and the latency sweep."""
    import html

    from . import write_page

    parts = []
    for (name, inst), records in sorted(kept.items()):
        w, h = 900, 220
        eq, total = [], 0.0
        if records:
            eq.append((float(minute_of_iso(records[0]["entry_utc"][:16] + ":00Z")), 0.0))
        for r in records:
            total += float(r["net_quote"])
            eq.append((float(minute_of_iso(r["exit_utc"][:16] + ":00Z")), total))
        dots = []
        if records:
            xs = [float(minute_of_iso(r["entry_utc"][:16] + ":00Z")) for r in records]
            ys = [float(r["net_bp"]) for r in records]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys + [0.0]), max(ys + [0.0])
            sx, sy = (w - 60) / ((x1 - x0) or 1), (h - 30) / ((y1 - y0) or 1)
            zero = h - 15 - (0 - y0) * sy
            dots.append(f'<line x1="50" x2="{w - 10}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#475569" '
                        'stroke-dasharray="4 4"/>')
            for x, y in zip(xs, ys):
                dots.append(f'<circle class="trade" cx="{50 + (x - x0) * sx:.1f}" cy="{h - 15 - (y - y0) * sy:.1f}" '
                            f'r="3" fill="{"#26a69a" if y > 0 else "#ef5350"}"/>')
        sweep = [r for r in rows if r["strategy"] == name and r["inst_id"] == inst]
        sweep.sort(key=lambda r: r["latency_ms"])
        top = max([abs(r["mean_net_bp"] or 0) for r in sweep] + [1e-9])
        bars = []
        for k, r in enumerate(sweep):
            v = r["mean_net_bp"] or 0.0
            bh = 80 * abs(v) / top
            y = 100 - bh if v >= 0 else 100
            x = 60 + k * 160
            bars.append(f'<rect class="sweep" x="{x}" y="{y:.1f}" width="80" height="{max(bh, 1):.1f}" '
                        f'fill="{"#26a69a" if v > 0 else "#ef5350"}"/>'
                        f'<text x="{x}" y="188" fill="#e2e8f0" font-size="12">{r["latency_ms"]} ms'
                        f'{" (its own)" if not r["sweep"] else ""}</text>'
                        f'<text x="{x}" y="203" fill="#94a3b8" font-size="12">{v:+.2f} bp · n {r["n"]}</text>')
        own = next((r for r in sweep if not r["sweep"]), None)
        head = "" if own is None else (
            f'n {own["n"]} · win {own["win_rate"] if own["win_rate"] is not None else "–"} · mean '
            f'{own["mean_net_bp"]} bp · total {own["total_net_quote"]} · max drawdown {own["max_drawdown_quote"]} · '
            f'skipped {own["skipped"]} · open {own["open"]}')
        parts.append(
            f'<section><h2>{html.escape(name)} · {html.escape(inst)}</h2><p>{html.escape(head)}</p>'
            f'<h3>equity (cumulative net quote at each exit)</h3><svg class="equity" width="{w}" height="{h}">'
            f'{_svg_line(eq, w, h, "#38bdf8")}</svg>'
            f'<h3>trades: net bp by entry time</h3><svg class="scatter" width="{w}" height="{h}">{"".join(dots)}</svg>'
            f'<h3>latency sweep: mean net bp</h3><svg class="sweep" width="{w}" height="210">'
            f'<line x1="50" x2="{w - 10}" y1="100" y2="100" stroke="#475569"/>{"".join(bars)}</svg></section>')
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>backtest</title><style>"
            "body{background:#0b0e14;color:#e2e8f0;font:14px system-ui,sans-serif;margin:24px}"
            "h2{margin:28px 0 4px}h3{color:#94a3b8;font-weight:500;margin:14px 0 4px}svg{background:#111621}"
            "</style></head><body><h1>backtest of " + html.escape(str(vault)) + "</h1>" + "".join(parts) +
            "<script>document.body.setAttribute('data-ready', JSON.stringify({sections: "
            "document.querySelectorAll('section').length, trades: document.querySelectorAll('circle.trade').length, "
            "sweep: document.querySelectorAll('rect.sweep').length}));</script></body></html>")
    write_page(path, page, "--html")
