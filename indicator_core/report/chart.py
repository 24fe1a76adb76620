"""``indicators chart``: one self-contained HTML chart of an instrument (SPEC section 14).

The page inlines TradingView's Lightweight Charts (``vendor/``, Apache-2.0) and the
data, so it opens offline.  Panes: candles with VWAP lines, untouched wick levels
(drawn from their candle's close until the first touch), absorption, divergence
and confluence markers, and the book's buckets as a heatmap behind the candles
where ``buckets_1m`` exists; volume coloured by tier; delta; CVD; and where
``derivs_1m`` exists, open interest with the 8-hour funding in a pane of their
own and the liquidations as bubbles on the candles, sized by notional.

Prices and volumes are handed to the page as JSON numbers: they are drawn, never
added up into money.  Bars are aggregated to ``--tf`` here, so a month of minutes
(43,200) can be drawn as 1h bars; at 1m the page stays usable too.
"""

from __future__ import annotations

import bisect
import html
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import orjson

from . import write_page
from ..errors import ConfigError
from ..storage import InstrumentKey, read_state, state_path
from ..timeutil import TIMEFRAMES, iso_minute, period_start
from .vault import committed_records, minute_of_iso, select_instruments

TIER_CODE = {None: 0, "T1": 1, "T2": 2, "T3": 3, "T4": 4}
HEAT_BUCKETS_PER_SIDE = 30  # the largest buckets of each side kept per bar
HEAT_MAX_CELLS = 600_000  # beyond this, fewer buckets per bar are kept


def _f(x) -> float | None:
    return None if x is None else float(x)


def _value(x):
    """A number for drawing; a timestamp string stays a string."""
    if x is None or (isinstance(x, str) and "T" in x):
        return x
    return float(x)


def _sign(text: str | None) -> int:
    if not text or text in ("0", "+0", "-0"):
        return 0
    return -1 if text.startswith("-") else 1


def _decimals(text: str) -> int:
    _, _, frac = text.partition(".")
    return len(frac)


@dataclass
class Period:
    minute: int
    o: float | None = None
    h: float | None = None
    low: float | None = None
    c: float | None = None
    carry: float | None = None  # close carried by empty minutes
    v: float = 0.0
    tiers: list = None  # minutes per tier code 0..4
    d: float = 0.0
    members: dict = field(default_factory=dict)  # an aggregate's member -> its delta in the period

    def tier(self) -> int:
        """The tier of most of the period's minutes (a tie goes to the higher tier); 0 when none has one."""
        counts = self.tiers[1:]
        if not any(counts):
            return 0
        return max(range(4), key=lambda k: (counts[k], k)) + 1


def _wick_stream(vault: Path, key: InstrumentKey) -> str | None:
    state = read_state(state_path(vault, "wicks", key))
    if not state:
        return None
    names = sorted(s for s in (state.get("outputs") or {}) if s.startswith("wicks_"))
    return names[0] if names else None


def build_data(vault: Path, inst: str, lo: int | None, hi: int | None, tf: str, streams: dict | None = None) -> dict:
    """The chart's data; ``streams`` the declared signal streams (default: the installed plugins'), whose records
    with a direction are marked on the candles."""
    if streams is None:
        from ..signals import installed_streams

        streams = installed_streams()
    if tf not in TIMEFRAMES:
        raise ConfigError(f"--tf {tf!r}: choose one of {', '.join(TIMEFRAMES)}")
    (key,) = select_instruments(vault, [inst])[:1]
    tfm = TIMEFRAMES[tf]
    recs = committed_records(vault, "volume", key, "volume_1m") or []

    def inside(m: int) -> bool:
        return (lo is None or m >= lo) and (hi is None or m < hi)

    rows = [(minute_of_iso(r["timestamp_utc"]), r) for r in recs]
    rows = [(m, r) for m, r in rows if inside(m)]
    if not rows:
        span = f" between {iso_minute(lo) if lo else 'the start'} and {iso_minute(hi) if hi else 'the end'}"
        raise ConfigError(
            f"no committed volume_1m minutes for {key.inst_id}{span if (lo or hi) else ''}; "
            f"run `indicators run --vault {vault} --inst {key.inst_id}` first, or widen --from/--to"
        )
    precision = min(8, max(_decimals(r["close"]) for _, r in rows[-500:]))
    periods: dict[int, Period] = {}
    order: list[int] = []
    markers: list[list] = []
    for m, r in rows:
        p0 = period_start(m, tfm)
        p = periods.get(p0)
        if p is None:
            p = periods[p0] = Period(p0, tiers=[0] * 5)
            order.append(p0)
        if r.get("empty"):
            p.carry = float(r["close"])
        else:
            hi_, lo_, c = float(r["high"]), float(r["low"]), float(r["close"])
            if p.o is None:
                p.o, p.h, p.low = float(r["open"]), hi_, lo_
            p.h, p.low, p.c = max(p.h, hi_), min(p.low, lo_), c
        p.v += float(r["total_volume"])
        p.tiers[TIER_CODE.get(r.get("volume_tier"), 0)] += 1
        p.d += float(r["delta"])
        for member, mv in (r.get("by_member") or {}).items():  # an aggregate: each member's own delta (SPEC 16)
            p.members[member] = p.members.get(member, 0.0) + float(mv["buy_volume"]) - float(mv["sell_volume"])
        t = p0 * 60
        if r.get("absorption"):
            markers.append([t, "A", -_sign(r["delta"]), 0])
        if r.get("divergence"):
            markers.append([t, "D", -_sign(r["price_change_pct"]), 0])
    t, o, h, low, c, v, tier, d = ([] for _ in range(8))
    last = None
    for p0 in order:
        p = periods[p0]
        if p.o is None:  # only empty minutes: a flat bar at the carried close
            close = p.carry if p.carry is not None else last
            p.o = p.h = p.low = p.c = close
        last = p.c
        t.append(p0 * 60)
        o.append(p.o)
        h.append(p.h)
        low.append(p.low)
        c.append(p.c)
        v.append(round(p.v, 2))
        tier.append(p.tier())
        d.append(round(p.d, 2))
    first_m, last_m = order[0], order[-1] + tfm

    def last_per_period(records: list[dict] | None, fields: list[str]) -> dict[str, list] | None:
        if not records:
            return None
        by: dict[int, dict] = {}
        for r in records:
            m = minute_of_iso(r["timestamp_utc"])
            if inside(m):
                by[period_start(m, tfm)] = r  # the last minute of the period wins
        return {f: [_value((by.get(p0) or {}).get(f)) for p0 in order] for f in fields}

    cvd = last_per_period(committed_records(vault, "cvd", key, "cvd_1m"), ["cvd"])
    vw_recs = committed_records(vault, "vwap", key, "vwap_1m")
    vwap = None
    if vw_recs:
        fields = ["vwap_session"] + sorted((k for k in vw_recs[0] if k.startswith("vwap_") and k != "vwap_session"),
                                           key=lambda k: int(k[5:-1]) if k[5:-1].isdigit() else 0)
        vwap = last_per_period(vw_recs, fields + ["session_start"])
        starts = vwap.pop("session_start")
        # a new session starts a new line: no segment joins the last value of one session to the next
        for i in range(1, len(starts)):
            if starts[i] is not None and starts[i - 1] is not None and starts[i] != starts[i - 1]:
                vwap["vwap_session"][i - 1] = None

    # wick levels: active from their candle's close until the first touch
    levels: list[list] = []
    ws = _wick_stream(vault, key)
    if ws:
        wtf = TIMEFRAMES.get(ws.removeprefix("wicks_"), 60)
        touched: dict[tuple[str, str, str], int] = {}
        events = committed_records(vault, "wicks", key, ws) or []
        for e in events:
            if e.get("event") == "touch":
                touched[(e["side"], e["level"], e["timestamp_utc"])] = minute_of_iso(e["touched_utc"])
        for e in events:
            if e.get("event") != "wick":
                continue
            start = minute_of_iso(e["timestamp_utc"]) + wtf
            end = touched.get((e["side"], e["level"], e["timestamp_utc"]))
            if start >= last_m or (end is not None and end < first_m):
                continue
            levels.append([float(e["level"]), 1 if e["side"] == "upper" else -1,
                           max(start, first_m) * 60, None if end is None else end * 60])

    n_conf = 0
    for stream in (s for _, s in sorted(streams.items()) if s.direction_field):  # signals with a direction
        for r in committed_records(vault, stream.folder, key, stream.output) or []:
            m = minute_of_iso(r[stream.time_field])
            if inside(m):
                n_conf += 1
                markers.append([period_start(m, tfm) * 60, "C", 1 if r.get(stream.direction_field) in ("long", 1) else -1,
                                int(r.get("score") or 0), r.get("level")])
    markers.sort(key=lambda x: (x[0], x[1]))

    heat = _heat(committed_records(vault, "buckets", key, "buckets_1m"), inside, tfm, len(order))
    derivs = _derivs(committed_records(vault, "derivs", key, "derivs_1m"), inside, tfm, order)
    footprint = _footprint(committed_records(vault, "footprint", key, "footprint_1m"),
                           committed_records(vault, "footprint", key, "profile"), inside, tfm)
    return {
        "inst": key.inst_id, "label": key.label, "tf": tf, "tf_sec": tfm * 60, "precision": precision,
        "from": iso_minute(first_m), "to": iso_minute(last_m), "minutes": len(rows),
        "t": t, "o": o, "h": h, "l": low, "c": c, "v": v, "tier": tier, "d": d,
        "cvd": cvd["cvd"] if cvd else None, "vwap": vwap, "levels": levels, "markers": markers,
        "confluence": n_conf, "heat": heat, "derivs": derivs, "footprint": footprint,
        # an aggregate's members, each with its delta per bar (null where it had no record), beside the summed one
        "members": {m: [(round(periods[p0].members[m], 2) if m in periods[p0].members else None) for p0 in order]
                    for m in dict.fromkeys(m for p0 in order for m in periods[p0].members)} or None,
    }


def _derivs(records: list[dict] | None, inside, tfm: int, order: list[int]) -> dict | None:
    """Open interest (quote where priced, else contracts) and the 8-hour funding at each bar's close, and each
    bar's liquidations by side (SPEC 17): the chart's open-interest pane and its liquidation bubbles."""
    if not records:
        return None
    by: dict[int, dict] = {}
    liqs: dict[int, list[float]] = {}
    for r in records:
        m = minute_of_iso(r["timestamp_utc"])
        if not inside(m):
            continue
        p0 = period_start(m, tfm)
        by[p0] = r  # the last minute of the period: its values at the bar's close
        side = liqs.setdefault(p0, [0.0, 0.0])
        side[0] += float(r["liq_long_quote"])
        side[1] += float(r["liq_short_quote"])
    if not by:
        return None
    quote = any(r.get("oi_quote") is not None for r in by.values())
    field_ = "oi_quote" if quote else "oi"
    return {
        "oi_unit": "quote" if quote else "contracts",
        "oi": [_f((by.get(p0) or {}).get(field_)) for p0 in order],
        "funding_8h": [_f((by.get(p0) or {}).get("funding_8h")) for p0 in order],
        # [time, longs liquidated, shorts liquidated] (quote notional) of the bars that had any
        "liqs": [[p0 * 60, round(a, 2), round(b, 2)] for p0, (a, b) in sorted(liqs.items()) if a or b],
    }


FOOTPRINT_MAX_CELLS = 400_000  # beyond this, the rows of each bar with the least volume are left out


def _footprint(records: list[dict] | None, profiles: list[dict] | None, inside, tfm: int) -> dict | None:
    """The footprint per bar (rows summed over the bar's minutes: buy, sell; its POC and imbalances at 1m) and
    each closed session's profile (volume by row from its minutes, with POC and value area, SPEC 18)."""
    if not records:
        return None
    bars: dict[int, dict[float, list[float]]] = {}
    marks: dict[int, tuple] = {}
    starts = sorted(minute_of_iso(p["session_start"]) for p in profiles or ())
    sessions: dict[int, dict[float, float]] = {}
    row = float(records[0]["row"])
    for r in records:
        m = minute_of_iso(r["timestamp_utc"])
        cells = [(float(px), float(b), float(s)) for px, b, s, _ in r["levels"]]
        if inside(m):
            p0 = period_start(m, tfm)
            bar = bars.setdefault(p0, {})
            for px, b, s_ in cells:
                cur = bar.setdefault(px, [0.0, 0.0])
                cur[0] += b
                cur[1] += s_
            if tfm == 1:
                marks[p0] = (float(r["poc"]), [float(x) for x in r["ask_imbalances"]],
                             [float(x) for x in r["bid_imbalances"]])
        k = bisect.bisect_right(starts, m) - 1  # the closed session the minute is in (its anchor, not UTC midnight)
        if k >= 0 and m < starts[k] + 1440:
            sess = sessions.setdefault(starts[k], {})
            for px, b, s_ in cells:
                sess[px] = sess.get(px, 0.0) + b + s_
    if not bars:
        return None
    total = sum(len(b) for b in bars.values())
    keep = max(3, FOOTPRINT_MAX_CELLS // max(1, len(bars))) if total > FOOTPRINT_MAX_CELLS else None
    out_bars: list = []
    deltas: list[float] = []
    for p0 in sorted(bars):
        cells = sorted(([px, round(b, 6), round(s_, 6)] for px, (b, s_) in bars[p0].items()), key=lambda c: c[0])
        if keep is not None and len(cells) > keep:
            cells = sorted(sorted(cells, key=lambda c: -(c[1] + c[2]))[:keep], key=lambda c: c[0])
        deltas.extend(abs(c[1] - c[2]) for c in cells)
        poc, asks, bids = marks.get(p0, (None, [], []))
        out_bars.append([p0 * 60, cells, poc, asks, bids])
    out_profiles = []
    for prof in profiles or ():
        start = minute_of_iso(prof["session_start"])
        if not (inside(start) or inside(start + 1439)):
            continue
        vols = sessions.get(start, {})
        out_profiles.append([start * 60, (start + 1440) * 60, float(prof["poc"]), float(prof["vah"]), float(prof["val"]),
                             sorted([px, round(v, 6)] for px, v in vols.items())])
    deltas.sort()
    top = deltas[int(0.95 * (len(deltas) - 1))] if deltas else 0.0  # colour scale: the 95th percentile of |delta|
    return {"row": row, "bars": out_bars, "max": top or (deltas[-1] if deltas else 1.0), "profiles": out_profiles}


def _heat(records: list[dict] | None, inside, tfm: int, n_bars: int) -> dict | None:
    """The book at each bar's close (its last valid minute): the largest buckets of each side."""
    if not records:
        return None
    by: dict[int, dict] = {}
    step = None
    for r in records:
        m = minute_of_iso(r["timestamp_utc"])
        if r.get("valid") and inside(m):
            by[period_start(m, tfm)] = r
            step = step or r.get("step")
    if not by or step is None:
        return None
    keep = max(3, min(HEAT_BUCKETS_PER_SIDE, HEAT_MAX_CELLS // (2 * max(1, len(by)))))
    rows = []
    top = 0.0
    for p0 in sorted(by):
        r = by[p0]
        sides = []
        for side in ("bids", "asks"):
            cells = sorted(([float(px), float(n)] for px, n in r.get(side) or []), key=lambda x: -x[1])[:keep]
            top = max([top] + [n for _, n in cells])
            sides.append(cells)
        walls = [_f((r.get(w) or {}).get("price")) for w in ("bid_wall", "ask_wall")]
        rows.append([p0 * 60, sides[0], sides[1], walls])
    return {"step": float(step), "rows": rows, "max": top}


def render(data: dict) -> str:
    lib = resources.files(__package__).joinpath("vendor/lightweight-charts.standalone.production.js").read_text("utf-8")
    tpl = resources.files(__package__).joinpath("chart.html").read_text("utf-8")
    payload = orjson.dumps(data).decode().replace("</", "<\\/")
    title = f"{data['inst']} {data['tf']} {data['from']} – {data['to']}"
    return (tpl.replace("/*__LIB__*/", lib.replace("</script", "<\\/script"))
            .replace("__DATA__", payload)
            .replace("__TITLE__", html.escape(title)))


def write_chart(vault: Path, inst: str, lo: int | None, hi: int | None, tf: str, out: Path,
                footprint_view: bool = False) -> str:
    data = build_data(vault, inst, lo, hi, tf)
    if footprint_view:
        if not data["footprint"]:
            raise ConfigError(f"--footprint: no committed footprint minutes for {inst} in this range; enable it "
                              f"(`[plugins.footprint] enabled = true`) and run `indicators run --vault {vault}` first")
        data["view"] = "footprint"
    write_page(out, render(data), "--out")
    n_mark = len(data["markers"])
    return (f"{len(data['t'])} {tf} bars from {data['from']} to {data['to']}, {n_mark} markers, "
            f"{len(data['levels'])} wick levels, {data['confluence']} confluence signals"
            + (f", book heatmap on {len(data['heat']['rows'])} bars" if data["heat"] else "")
            + (f", open interest and {len(data['derivs']['liqs'])} liquidation bubbles" if data["derivs"] else "")
            + (f", footprint on {len(data['footprint']['bars'])} bars and {len(data['footprint']['profiles'])} session "
               "profiles" if data["footprint"] else ""))
