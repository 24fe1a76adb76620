"""``indicators study``: what happened after each signal (SPEC section 13).

Prices come from the committed ``volume_1m`` records of each instrument
(``close``, ``high``, ``low`` of every minute, empty minutes included: they carry
the previous close, so a horizon counts clock minutes, not traded ones).  The
statistics are floats: they describe returns, they never add money.

Rows are one per (instrument, signal, horizon), and ``inst_id: "all"`` rows pool
the instruments when several are studied.  Every figure is deterministic: the
bootstrap uses numpy's ``Generator`` with a fixed seed, a fresh one per row, so a
row's interval depends only on its own sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..storage import InstrumentKey
from .vault import committed_records, minute_of_iso, select_instruments

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20261125
PATH_BEFORE = 10  # minutes of the average path before the signal
DEFAULT_HORIZONS = (1, 5, 15, 60)
RULE_SIGNALS = ("absorption", "divergence", "tier:T1", "tier:T2", "tier:T3", "tier:T4")
# direction not given by a rule every minute has (see baseline()): whales of volume_1m, and every signal
# stream an indicator declares with a direction (Indicator.signals; the built-in one: confluence)
MINUTE_SIGNALS = RULE_SIGNALS + ("whale",)
# from derivs_1m (SPEC 17), where the instrument has it: liquidation minutes by side, open-interest surges
DERIVS_SIGNALS = ("liq_long", "liq_short", "oi_surge")
# from footprint_1m and naked_pocs (SPEC 18), where the footprint runs for the instrument
FOOTPRINT_SIGNALS = ("stacked_ask", "stacked_bid", "unfinished_high", "unfinished_low", "naked_poc_test")
LIQ_THRESHOLD = Decimal("100000")  # a minute's liquidations on one side, quote notional (the liquidations default)
OI_SURGE_QUANTILE = 0.99  # |oi_delta| in the top 1 % of the instrument's minutes

KEYS = ("inst_id", "signal", "horizon", "n", "mean_bp", "median_bp", "hit_rate", "std_bp", "ci_low_bp",
        "ci_high_bp", "mfe_bp", "mae_bp", "overlapping", "skipped_no_direction", "baseline_n",
        "baseline_mean_bp", "edge_bp")


def _sign(text: str | None) -> int:
    """Sign of a signed decimal string (``"+1.5"``, ``"-2"``, ``"0"``)."""
    if not text:
        return 0
    d = Decimal(text)
    return (d > 0) - (d < 0)


@dataclass
class Prices:
    """One instrument's minutes as dense arrays from its first to its last committed minute."""

    key: InstrumentKey
    minute0: int
    close: np.ndarray  # NaN where no record (only when empty bars are not filled)
    high: np.ndarray
    low: np.ndarray
    rule_dir: dict[str, np.ndarray] = field(default_factory=dict)  # signal -> direction of every minute
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # signal -> fired in the minute

    @property
    def size(self) -> int:
        return len(self.close)


def load_prices(key: InstrumentKey, records: list[dict]) -> Prices:
    minutes = np.array([minute_of_iso(r["timestamp_utc"]) for r in records], dtype=np.int64)
    m0 = int(minutes[0])
    size = int(minutes[-1]) - m0 + 1
    idx = minutes - m0
    close, high, low = (np.full(size, np.nan) for _ in range(3))
    close[idx] = [float(r["close"]) for r in records]
    high[idx] = [float(r["high"]) for r in records]
    low[idx] = [float(r["low"]) for r in records]
    p = Prices(key, m0, close, high, low)

    def dense(values, dtype) -> np.ndarray:
        a = np.zeros(size, dtype=dtype)
        a[idx] = values
        return a

    delta = dense([_sign(r.get("delta")) for r in records], np.int8)
    move = dense([_sign(r.get("price_change_pct")) for r in records], np.int8)
    whale = dense([_sign(str(Decimal(r.get("whale_buy_volume") or "0") - Decimal(r.get("whale_sell_volume") or "0")))
                   for r in records], np.int8)
    tiers = [r.get("volume_tier") for r in records]
    p.rule_dir["absorption"] = -delta
    p.flags["absorption"] = dense([bool(r.get("absorption")) for r in records], bool)
    p.rule_dir["divergence"] = -move
    p.flags["divergence"] = dense([bool(r.get("divergence")) for r in records], bool)
    for t in ("T1", "T2", "T3", "T4"):
        p.rule_dir[f"tier:{t}"] = delta
        p.flags[f"tier:{t}"] = dense([x == t for x in tiers], bool)
    p.rule_dir["whale"] = whale
    p.flags["whale"] = dense([(r.get("whale_count") or 0) > 0 for r in records], bool)
    p.rule_dir["move"] = move
    return p


def add_footprint(p: Prices, minutes: list[dict], naked: list[dict]) -> bool:
    """The signals of the footprint (SPEC 18) on the instrument's minutes; False when it has none.

    ``stacked_ask`` (+1) and ``stacked_bid`` (-1): minutes with a stacked imbalance of that side;
    ``unfinished_high`` (-1) and ``unfinished_low`` (+1); ``naked_poc_test``: the minute of the first trade
    at a naked POC, its direction toward the level from the previous minute's close, negated (a level
    tested from above is a long)."""
    if not minutes and not naked:
        return False
    flags = {name: np.zeros(p.size, dtype=bool) for name in FOOTPRINT_SIGNALS}
    for r in minutes:
        i = minute_of_iso(r["timestamp_utc"]) - p.minute0
        if not 0 <= i < p.size:
            continue
        sides = {s["side"] for s in r.get("stacked") or ()}
        flags["stacked_ask"][i] = "ask" in sides
        flags["stacked_bid"][i] = "bid" in sides
        flags["unfinished_high"][i] = bool(r.get("unfinished_high"))
        flags["unfinished_low"][i] = bool(r.get("unfinished_low"))
    for name, direction in (("stacked_ask", 1), ("stacked_bid", -1), ("unfinished_high", -1), ("unfinished_low", 1)):
        p.flags[name] = flags[name]
        p.rule_dir[name] = np.full(p.size, direction, dtype=np.int8)
    test_dir = np.zeros(p.size, dtype=np.int8)
    for e in naked:
        if e.get("event") != "poc_touched":
            continue
        i = minute_of_iso(e["touched_utc"][:16] + ":00Z") - p.minute0
        if not 1 <= i < p.size or np.isnan(p.close[i - 1]):
            continue
        flags["naked_poc_test"][i] = True
        prev, level = p.close[i - 1], float(e["level"])
        test_dir[i] = 1 if prev > level else -1 if prev < level else 0
    p.flags["naked_poc_test"] = flags["naked_poc_test"]
    p.rule_dir["naked_poc_test"] = test_dir
    return True


def add_derivs(p: Prices, records: list[dict]) -> bool:
    """The signals of ``derivs_1m`` (SPEC 17) on the instrument's minutes; False when it has none.

    ``liq_long`` / ``liq_short``: minutes whose liquidations on that side reach :data:`LIQ_THRESHOLD`
    (after longs are liquidated +1, after shorts -1); ``oi_surge``: minutes whose |oi_delta| is in the
    top 1 % of the instrument's minutes with a delta, direction sign(oi_delta) x sign(price change)."""
    if not records:
        return False
    idx = np.array([minute_of_iso(r["timestamp_utc"]) - p.minute0 for r in records], dtype=np.int64)
    keep = (idx >= 0) & (idx < p.size)
    rows = [r for r, k in zip(records, keep.tolist()) if k]
    idx = idx[keep]
    for side, direction in (("long", 1), ("short", -1)):
        flag = np.zeros(p.size, dtype=bool)
        flag[idx] = [Decimal(r[f"liq_{side}_quote"]) >= LIQ_THRESHOLD for r in rows]
        p.flags[f"liq_{side}"] = flag
        p.rule_dir[f"liq_{side}"] = np.full(p.size, direction, dtype=np.int8)
    delta = np.zeros(p.size)
    have = np.zeros(p.size, dtype=bool)
    for i, r in zip(idx.tolist(), rows):
        if r.get("oi_delta") is not None:
            delta[i] = float(r["oi_delta"])
            have[i] = True
    surge = np.zeros(p.size, dtype=bool)
    if have.any():
        cut = float(np.quantile(np.abs(delta[have]), OI_SURGE_QUANTILE))
        surge = have & (np.abs(delta) >= cut) & (np.abs(delta) > 0)
    p.flags["oi_surge"] = surge
    p.rule_dir["oi_surge"] = (np.sign(delta).astype(np.int8) * p.rule_dir["move"]).astype(np.int8)
    return True


@dataclass
class Events:
    """Signal occurrences: index into the instrument's minutes and direction (+1 long, -1 short)."""

    idx: np.ndarray
    direction: np.ndarray
    skipped: int  # occurrences whose direction is 0


_DIRECTIONS = {"long": 1, "short": -1, 1: 1, -1: -1, "+1": 1, "-1": -1}


def signal_events(p: Prices, signal: str, declared: dict[str, tuple[Any, list[dict] | None]], lo: int | None,
                  hi: int | None) -> Events:
    """The minutes of ``signal`` with their directions: a rule of volume_1m, or a declared signal stream's records
    (``declared``: stream name -> (its SignalStream, its committed records))."""
    if signal in declared:
        stream, records = declared[signal]
        rows = records or []
        idx = np.array([minute_of_iso(r[stream.time_field]) - p.minute0 for r in rows], dtype=np.int64)
        d = np.array([_DIRECTIONS.get(r.get(stream.direction_field), 0) for r in rows], dtype=np.int8)
        keep = (idx >= 0) & (idx < p.size)
        order = np.argsort(idx[keep], kind="stable")  # in time order, whatever the file's order
        idx, d = idx[keep][order], d[keep][order]
    else:
        idx = np.flatnonzero(p.flags[signal])
        d = p.rule_dir[signal][idx]
    keep = _in_range(idx + p.minute0, lo, hi)
    idx, d = idx[keep], d[keep]
    skipped = int((d == 0).sum())
    return Events(idx[d != 0], d[d != 0].astype(np.int8), skipped)


def _in_range(minutes: np.ndarray, lo: int | None, hi: int | None) -> np.ndarray:
    keep = np.ones(len(minutes), dtype=bool)
    if lo is not None:
        keep &= minutes >= lo
    if hi is not None:
        keep &= minutes < hi
    return keep


def _forward(a: np.ndarray, h: int, fn) -> np.ndarray:
    """``fn`` over a[i+1 .. i+h] for every i (NaN where the window runs past the end)."""
    padded = np.concatenate([a[1:], np.full(h, np.nan)])
    win = np.lib.stride_tricks.sliding_window_view(padded, h)[: len(a)]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(win, axis=1)


@dataclass
class Outcome:
    """Direction-adjusted outcomes of a set of events at one horizon (only events with h minutes after)."""

    ret: np.ndarray
    mfe: np.ndarray
    mae: np.ndarray
    overlapping: int


def outcomes(p: Prices, ev: Events, h: int, cache: dict) -> Outcome:
    fwd = cache.get(h)
    if fwd is None:
        with np.errstate(invalid="ignore"):
            nxt = np.full(p.size, np.nan)
            nxt[: max(0, p.size - h)] = p.close[h:]
            fwd = cache[h] = (
                (nxt / p.close - 1) * 1e4,
                (_forward(p.high, h, np.nanmax) / p.close - 1) * 1e4,
                (_forward(p.low, h, np.nanmin) / p.close - 1) * 1e4,
            )
    raw, up, down = fwd
    ok = ~np.isnan(raw[ev.idx])
    idx, d = ev.idx[ok], ev.direction[ok].astype(np.float64)
    ret = raw[idx] * d
    mfe = np.where(d > 0, up[idx], -down[idx])
    mae = np.where(d > 0, down[idx], -up[idx])
    overlapping = int((np.diff(idx) < h).sum()) if len(idx) > 1 else 0
    return Outcome(ret, mfe, mae, overlapping)


def bootstrap_ci(x: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``x`` (``resamples`` draws with replacement)."""
    n = len(x)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 2_000_000 // n)
    for a in range(0, resamples, step):
        b = min(resamples, a + step)
        means[a:b] = x[rng.integers(0, n, (b - a, n))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def _num(x: float | None, places: int = 4) -> float | None:
    if x is None or not np.isfinite(x):
        return None
    v = round(float(x), places)
    return 0.0 if v == 0 else v  # no "-0.0"


@dataclass
class Sample:
    """What a row is computed from: the signal's outcomes and the baseline's."""

    ret: list[np.ndarray] = field(default_factory=list)
    mfe: list[np.ndarray] = field(default_factory=list)
    mae: list[np.ndarray] = field(default_factory=list)
    overlapping: int = 0
    skipped: int = 0
    base_n: int = 0
    base_sum: float = 0.0

    def add(self, other: "Sample") -> None:
        self.ret += other.ret
        self.mfe += other.mfe
        self.mae += other.mae
        self.overlapping += other.overlapping
        self.skipped += other.skipped
        self.base_n += other.base_n
        self.base_sum += other.base_sum


def row(inst_id: str, signal: str, h: int, s: Sample) -> dict:
    ret = np.concatenate(s.ret) if s.ret else np.empty(0)
    n = len(ret)
    base_mean = s.base_sum / s.base_n if s.base_n else None
    r: dict = dict.fromkeys(KEYS)
    r.update(inst_id=inst_id, signal=signal, horizon=h, n=n, overlapping=s.overlapping,
             skipped_no_direction=s.skipped, baseline_n=s.base_n, baseline_mean_bp=_num(base_mean))
    if n:
        mean = float(ret.mean())
        lo, hi = bootstrap_ci(ret)
        r.update(
            mean_bp=_num(mean), median_bp=_num(np.median(ret)), hit_rate=_num((ret > 0).mean()),
            std_bp=_num(ret.std(ddof=1)) if n > 1 else None, ci_low_bp=_num(lo), ci_high_bp=_num(hi),
            mfe_bp=_num(np.concatenate(s.mfe).mean()), mae_bp=_num(np.concatenate(s.mae).mean()),
            edge_bp=_num(mean - base_mean) if base_mean is not None else None,
        )
    return r


@dataclass
class Study:
    rows: list[dict]
    horizons: list[int]
    signals: list[str]
    instruments: list[str]
    paths: dict  # (inst_id, signal) -> {"signal": (mean, lo, hi, n), "baseline": (mean, lo, hi, n)}
    returns: dict  # (inst_id, signal, h) -> {"signal": ndarray, "baseline": ndarray}
    first_utc: str | None = None
    last_utc: str | None = None


def baseline(p: Prices, signal: str, ev: Events, h: int, cache: dict, lo, hi) -> tuple[int, float, np.ndarray, np.ndarray]:
    """n, sum, and sample (values, weights) of the baseline at horizon h.

    For a rule signal (absorption, divergence, tier:*) the rule is applied to every
    minute and the minutes with a direction are the baseline.  ``whale`` and the
    declared signal streams (``confluence``) have no rule that gives every minute a direction (minutes
    without whales have none), so their baseline is every minute taken in the
    signal's own mix of longs and shorts: each minute's forward return times
    ``(longs - shorts) / (longs + shorts)``, what the same trades placed at random
    minutes would make on average.
    """
    allidx = np.flatnonzero(~np.isnan(p.close) & _in_range(np.arange(p.size) + p.minute0, lo, hi))
    if signal in RULE_SIGNALS:
        d = p.rule_dir[signal][allidx]
        base = outcomes(p, Events(allidx[d != 0], d[d != 0], 0), h, cache)
        return len(base.ret), float(base.ret.sum()), base.ret, np.ones(len(base.ret))
    raw = outcomes(p, Events(allidx, np.ones(len(allidx), dtype=np.int8), 0), h, cache).ret
    n_ev = len(ev.direction)
    longs = float((ev.direction > 0).sum()) / n_ev if n_ev else 0.5
    mix = 2 * longs - 1 if n_ev else 0.0
    # every minute taken long with weight `longs` and short with weight `1 - longs`
    weights = np.concatenate([np.full(len(raw), longs), np.full(len(raw), 1 - longs)])
    return len(raw), float(raw.sum()) * mix, np.concatenate([raw, -raw]), weights


def path(p: Prices, ev: Events, longest: int) -> np.ndarray:
    """Direction-adjusted bp from the entry close, for offsets -PATH_BEFORE..longest (rows = events)."""
    offsets = np.arange(-PATH_BEFORE, longest + 1)
    at = ev.idx[:, None] + offsets[None, :]
    inside = (at >= 0) & (at < p.size)
    c = np.where(inside, p.close[np.clip(at, 0, p.size - 1)], np.nan)
    with np.errstate(invalid="ignore"):
        return (c / p.close[ev.idx][:, None] - 1) * 1e4 * ev.direction[:, None]


def _band(rows: np.ndarray, scale: float = 1.0) -> tuple[list, list, list, int]:
    """Mean path and its 95 % normal interval (mean ± 1.96 standard errors) per offset."""
    import warnings

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        n = (~np.isnan(rows)).sum(axis=0)
        mean = np.nanmean(rows, axis=0) * scale
        se = np.nanstd(rows, axis=0, ddof=1) / np.sqrt(n) * abs(scale)
    fix = lambda a: [_num(v) for v in a]  # noqa: E731
    return fix(mean), fix(mean - 1.96 * se), fix(mean + 1.96 * se), int(rows.shape[0])


def run_study(vault: Path, insts: list[str] | None, signals: list[str] | None, horizons: list[int],
              lo: int | None, hi: int | None, want_paths: bool = False, streams: dict[str, Any] | None = None) -> Study:
    """``streams``: the declared signal streams (notify.SignalStream by name; default: the installed plugins')."""
    if streams is None:
        from ..signals import installed_streams

        streams = installed_streams()
    directed = {name: s for name, s in sorted(streams.items()) if s.direction_field}
    all_signals = MINUTE_SIGNALS + DERIVS_SIGNALS + FOOTPRINT_SIGNALS + tuple(directed)
    keys = select_instruments(vault, insts)
    with_derivs = with_footprint = False
    loaded: list[tuple[Prices, dict[str, tuple[Any, list[dict] | None]]]] = []
    for key in keys:
        recs = committed_records(vault, "volume", key, "volume_1m")
        if not recs:
            if insts:
                raise ConfigError(
                    f"--inst {key.inst_id}: the volume analyzer has committed no minute for it yet; "
                    f"run `indicators run --vault {vault} --inst {key.inst_id}` when its trades have more than one minute"
                )
            continue
        declared = {name: (s, committed_records(vault, s.folder, key, s.output)) for name, s in directed.items()}
        p = load_prices(key, recs)
        if add_derivs(p, committed_records(vault, "derivs", key, "derivs_1m") or []):
            with_derivs = True
        else:
            for name in DERIVS_SIGNALS:  # no derivatives for this instrument: no such minutes
                p.flags[name] = np.zeros(p.size, dtype=bool)
                p.rule_dir[name] = np.zeros(p.size, dtype=np.int8)
        if add_footprint(p, committed_records(vault, "footprint", key, "footprint_1m") or [],
                         committed_records(vault, "footprint", key, "naked_pocs") or []):
            with_footprint = True
        else:
            for name in FOOTPRINT_SIGNALS:
                p.flags[name] = np.zeros(p.size, dtype=bool)
                p.rule_dir[name] = np.zeros(p.size, dtype=np.int8)
        loaded.append((p, declared))
    if not loaded:
        raise ConfigError(f"no committed `volume_1m` minutes in {vault}: run `indicators run --vault {vault}` first")
    present = {name for _, declared in loaded for name, (_, recs) in declared.items() if recs is not None}
    if signals:
        signals = [s.lower().replace("tier:t", "tier:T") for s in signals]
        for s in signals:
            if s not in all_signals:
                raise ConfigError(f"--signal {s!r}: unknown; choose from {', '.join(all_signals)}")
        for s in signals:
            if s in FOOTPRINT_SIGNALS and not with_footprint:
                raise ConfigError(
                    f"--signal {s}: no committed footprint minutes in {vault}; enable it (`[plugins.footprint] "
                    f"enabled = true`) and run `indicators run --vault {vault}` first"
                )
            if s in DERIVS_SIGNALS and not with_derivs:
                raise ConfigError(
                    f"--signal {s}: no committed derivs_1m minutes in {vault}; record funding, open interest and "
                    f"liquidations (README: derivatives) and run `indicators run --vault {vault}` first"
                )
            if s in directed and s not in present:
                raise ConfigError(
                    f"--signal {s}: no committed {s} signals in {vault}; enable the `{directed[s].indicator}` "
                    f"indicator in the config and run `indicators run --vault {vault}` first"
                )
        chosen = list(dict.fromkeys(signals))
    else:
        chosen = [s for s in all_signals if (s not in directed or s in present)
                  and (s not in DERIVS_SIGNALS or with_derivs) and (s not in FOOTPRINT_SIGNALS or with_footprint)]
    pooled = len(loaded) > 1
    rows: list[dict] = []
    paths: dict = {}
    returns: dict = {}
    longest = max(horizons)
    for signal in chosen:
        totals = {h: Sample() for h in horizons}
        path_rows: dict[str, list] = {"signal": [], "baseline": []}
        mixes = []
        for p, declared in loaded:
            cache: dict = {}
            ev = signal_events(p, signal, declared, lo, hi)
            for h in horizons:
                o = outcomes(p, ev, h, cache)
                bn, bsum, bret, bw = baseline(p, signal, ev, h, cache, lo, hi)
                s = Sample([o.ret], [o.mfe], [o.mae], o.overlapping, ev.skipped, bn, bsum)
                totals[h].add(s)
                rows.append(row(p.key.inst_id, signal, h, s))
                if want_paths:
                    returns[(p.key.inst_id, signal, h)] = {"signal": o.ret, "baseline": bret, "baseline_w": bw}
                    pooled_r = returns.setdefault(("all", signal, h), {"signal": [], "baseline": [], "baseline_w": []})
                    pooled_r["signal"].append(o.ret)
                    pooled_r["baseline"].append(bret)
                    pooled_r["baseline_w"].append(bw)
            if want_paths:
                sp = path(p, ev, longest)
                allidx = np.flatnonzero(~np.isnan(p.close) & _in_range(np.arange(p.size) + p.minute0, lo, hi))
                if signal in RULE_SIGNALS:
                    d = p.rule_dir[signal][allidx]
                    bp = path(p, Events(allidx[d != 0], d[d != 0], 0), longest)
                    scale = 1.0
                else:
                    bp = path(p, Events(allidx, np.ones(len(allidx), dtype=np.int8), 0), longest)
                    scale = float(ev.direction.sum()) / len(ev.direction) if len(ev.direction) else 0.0
                paths[(p.key.inst_id, signal)] = {"signal": _band(sp), "baseline": _band(bp, scale)}
                path_rows["signal"].append(sp)
                path_rows["baseline"].append(bp)
                mixes.append((scale, len(ev.direction)))
        if pooled:
            for h in horizons:
                rows.append(row("all", signal, h, totals[h]))
            if want_paths:
                n_ev = sum(n for _, n in mixes)
                scale = sum(m * n for m, n in mixes) / n_ev if n_ev else 0.0
                paths[("all", signal)] = {
                    "signal": _band(np.concatenate(path_rows["signal"])),
                    "baseline": _band(np.concatenate(path_rows["baseline"]), 1.0 if signal in RULE_SIGNALS else scale),
                }
    if want_paths:
        for k, v in returns.items():
            if k[0] == "all":
                for part in ("signal", "baseline", "baseline_w"):
                    v[part] = np.concatenate(v[part])
    inst_ids = [p.key.inst_id for p, _ in loaded]
    if pooled:
        inst_ids.append("all")
    from ..timeutil import iso_minute

    first = min(p.minute0 for p, _ in loaded)
    last = max(p.minute0 + p.size - 1 for p, _ in loaded)
    return Study(rows, horizons, chosen, inst_ids, paths, returns, iso_minute(first), iso_minute(last))


def parse_horizons(text: str) -> list[int]:
    try:
        hs = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        hs = []
    if not hs or any(h < 1 for h in hs):
        raise ConfigError(f"--horizons {text!r}: expected positive whole minutes separated by commas, e.g. 1,5,15,60")
    return sorted(set(hs))


def _f(x, spec: str = "+.2f") -> str:
    return "-" if x is None else format(x, spec)


def format_table(study: Study) -> str:
    head = (f"{'instrument':<16} {'signal':<11} {'h':>3} {'n':>6} {'mean':>8} {'median':>8} {'hit':>6} {'std':>7} "
            f"{'95% CI of mean':>18} {'MFE':>7} {'MAE':>8} {'base n':>7} {'base':>7} {'edge':>7} {'overlap':>7} {'no dir':>6}")
    lines = [f"forward returns in bp, direction-adjusted (minutes {study.first_utc} .. {study.last_utc}, UTC)", head,
             "-" * len(head)]
    prev = None
    for r in study.rows:
        if prev is not None and (r["inst_id"], r["signal"]) != prev:
            lines.append("")
        prev = (r["inst_id"], r["signal"])
        ci = "-" if r["ci_low_bp"] is None else f"[{r['ci_low_bp']:+.2f}, {r['ci_high_bp']:+.2f}]"
        hit = "-" if r["hit_rate"] is None else f"{r['hit_rate'] * 100:.1f}%"
        lines.append(
            f"{r['inst_id']:<16} {r['signal']:<11} {r['horizon']:>3} {r['n']:>6} {_f(r['mean_bp']):>8} "
            f"{_f(r['median_bp']):>8} {hit:>6} {_f(r['std_bp'], '.2f'):>7} {ci:>18} {_f(r['mfe_bp']):>7} "
            f"{_f(r['mae_bp']):>8} {r['baseline_n']:>7} {_f(r['baseline_mean_bp']):>7} {_f(r['edge_bp']):>7} "
            f"{r['overlapping']:>7} {r['skipped_no_direction']:>6}"
        )
    lines.append("")
    lines.append("mean/median/std/CI/MFE/MAE/base/edge in bp; hit = share of returns > 0; base = same direction rule on "
                 "every minute; edge = mean - base; overlap = windows overlapping the previous signal's; "
                 "no dir = signals left out, direction 0")
    return "\n".join(lines)
