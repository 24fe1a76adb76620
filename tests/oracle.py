"""An independent reference for every output, written from SPEC and docs/DECISIONS.md.

Deliberately naive: one Python loop over the trades, Fractions for all
arithmetic, no numpy and nothing imported from the product.  It covers clean
input (no duplicates, gaps or late trades), which is what it is used on.
"""

from __future__ import annotations

import time
from collections import defaultdict
from fractions import Fraction
from typing import Any

TF = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}


# --- formats (SPEC section 3) -------------------------------------------------------------
def plain(x: Fraction) -> str:
    """Exact decimal in plain notation; x must have a terminating decimal expansion."""
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    x = abs(x)
    places = 0
    while (x * 10**places).denominator != 1:
        places += 1
        assert places < 60, "not a terminating decimal"
    n = (x * 10**places).numerator
    digits = str(n).rjust(places + 1, "0")
    text = digits[: len(digits) - places] + ("." + digits[len(digits) - places :] if places else "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


def signed(x: Fraction) -> str:
    return ("+" if x > 0 else "") + plain(x)


def round_half_even(x: Fraction, places: int) -> Fraction:
    y = x * 10**places
    q, r = divmod(y.numerator, y.denominator)
    twice = 2 * r
    if twice > y.denominator or (twice == y.denominator and q % 2 == 1):
        q += 1
    return Fraction(q, 10**places)


def iso_minute(m: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(m * 60))


def iso_ms(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000)) + ".%03dZ" % (ts % 1000)


# --- trades and bars ------------------------------------------------------------------------
def quantities(t: dict[str, str], kind: str, ct_val: str) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """(px, contracts, base, quote) of one trade, SPEC section 1."""
    px, sz, ct = Fraction(t["px"]), Fraction(t["sz"]), Fraction(ct_val)
    if kind == "linear":
        return px, sz, sz * ct, px * sz * ct
    if kind == "spot":
        return px, sz, sz, px * sz
    quote = sz * ct
    return px, sz, round_half_even(quote / px, 12), quote


def build_bars(trades: list[dict[str, str]], kind: str, ct_val: str, fill: bool = True) -> tuple[list[dict], int]:
    """Closed one-minute bars (the last, open minute excluded) and that open minute."""
    by_min: dict[int, list[dict]] = defaultdict(list)
    order = []
    for t in trades:
        m = int(t["ts"]) // 60000
        if m not in by_min:
            order.append(m)
        by_min[m].append(t)
    assert order == sorted(order), "oracle input must not contain late trades"
    bars = []
    prev_close = None
    for k, m in enumerate(order[:-1]):
        ts_sorted = sorted(by_min[m], key=lambda t: (int(t["ts"]), int(t["tradeId"])))
        q = [quantities(t, kind, ct_val) for t in ts_sorted]
        bar = {
            "minute": m, "open": q[0][0], "close": q[-1][0], "high": max(x[0] for x in q), "low": min(x[0] for x in q),
            "count": len(q), "empty": False, "trades": ts_sorted,
        }
        for unit, idx in (("contracts", 1), ("base", 2), ("quote", 3)):
            bar["buy_" + unit] = sum((x[idx] for x, t in zip(q, ts_sorted) if t["side"] == "buy"), Fraction(0))
            bar["sell_" + unit] = sum((x[idx] for x, t in zip(q, ts_sorted) if t["side"] == "sell"), Fraction(0))
        bars.append(bar)
        prev_close = bar["close"]
        if fill:
            for e in range(m + 1, order[k + 1]):
                empty = {"minute": e, "open": prev_close, "close": prev_close, "high": prev_close, "low": prev_close,
                         "count": 0, "empty": True, "trades": []}
                for unit in ("contracts", "base", "quote"):
                    empty["buy_" + unit] = empty["sell_" + unit] = Fraction(0)
                bars.append(empty)
    return bars, order[-1]


# --- indicators -----------------------------------------------------------------------------
def volume(bars: list[dict], inst_id: str, kind: str, ct_val: str, unit: str = "quote", whale: str = "100000",
           window: int = 100, min_bars: int = 20, t4: str = "2.0", t3: str = "1.0", t2: str = "0.5",
           move: str = "0.001") -> list[dict[str, Any]]:
    out = []
    history: list[Fraction] = []
    for b in bars:
        buy, sell = b["buy_" + unit], b["sell_" + unit]
        total = buy + sell
        wb = ws = Fraction(0)
        wc = 0
        for t in b["trades"]:
            px, sz, base, quote = quantities(t, kind, ct_val)
            if quote > Fraction(whale):
                v = {"contracts": sz, "base": base, "quote": quote}[unit]
                wc += 1
                if t["side"] == "buy":
                    wb += v
                else:
                    ws += v
        prev = history[-window:]
        med = None
        if len(prev) >= min_bars:
            s = sorted(prev)
            med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
        ratio = tier = None
        if med:
            r = total / med
            ratio = plain(round_half_even(r, 4))
            tier = "T4" if r > Fraction(t4) else "T3" if r > Fraction(t3) else "T2" if r >= Fraction(t2) else "T1"
        change = b["close"] - b["open"]
        delta = buy - sell
        out.append({
            "timestamp_utc": iso_minute(b["minute"]), "inst_id": inst_id,
            "open": plain(b["open"]), "high": plain(b["high"]), "low": plain(b["low"]), "close": plain(b["close"]),
            "total_volume": plain(total), "buy_volume": plain(buy), "sell_volume": plain(sell), "delta": signed(delta),
            "trade_count": b["count"], "whale_volume": plain(wb + ws), "whale_count": wc,
            "whale_buy_volume": plain(wb), "whale_sell_volume": plain(ws),
            "volume_median": plain(med) if med is not None else None, "volume_ratio": ratio, "volume_tier": tier,
            "price_change_pct": signed(round_half_even(change / b["open"] * 100, 4)),
            "absorption": tier == "T4" and abs(change) / b["open"] < Fraction(move),
            "divergence": change != 0 and delta != 0 and (change > 0) != (delta > 0),
            "empty": b["empty"], "tainted": False, "taint": [],
        })
        history.append(total)
    return out


def session_of(minute: int, anchor: str) -> int:
    a = int(anchor[:2]) * 60 + int(anchor[3:])
    return minute - (minute - a) % 1440


def cvd(bars: list[dict], unit: str = "quote", anchor: str = "00:00") -> list[dict[str, Any]]:
    out, total, session, in_session = [], Fraction(0), None, Fraction(0)
    for b in bars:
        d = b["buy_" + unit] - b["sell_" + unit]
        s = session_of(b["minute"], anchor)
        if s != session:
            session, in_session = s, Fraction(0)
        total += d
        in_session += d
        out.append({"timestamp_utc": iso_minute(b["minute"]), "buy_volume": plain(b["buy_" + unit]),
                    "sell_volume": plain(b["sell_" + unit]), "delta": signed(d), "cvd": signed(total),
                    "cvd_session": signed(in_session)})
    return out


def vwap(bars: list[dict], windows: tuple[int, ...] = (60, 240), anchor: str = "00:00") -> list[dict[str, Any]]:
    def v(q: Fraction, b: Fraction) -> str | None:
        return plain(round_half_even(q / b, 8)) if b else None

    out = []
    for k, b in enumerate(bars):
        s = session_of(b["minute"], anchor)
        sess = [x for x in bars[: k + 1] if session_of(x["minute"], anchor) == s]
        rec = {"timestamp_utc": iso_minute(b["minute"]),
               "vwap_session": v(sum(x["buy_quote"] + x["sell_quote"] for x in sess),
                                 sum(x["buy_base"] + x["sell_base"] for x in sess)),
               "session_start": iso_minute(s)}
        for n in windows:
            win = bars[max(0, k + 1 - n): k + 1]
            rec[f"vwap_{n}m"] = v(sum(x["buy_quote"] + x["sell_quote"] for x in win),
                                  sum(x["buy_base"] + x["sell_base"] for x in win))
        out.append(rec)
    return out


def candles(bars: list[dict], open_minute: int, tf: str) -> list[dict[str, Any]]:
    """Closed candles of ``tf``: periods that ended at or before the open minute."""
    n = TF[tf]
    periods: dict[int, list[dict]] = defaultdict(list)
    for b in bars:
        periods[b["minute"] - b["minute"] % n].append(b)
    out = []
    for p in sorted(periods):
        if p + n > open_minute:
            continue
        group = periods[p]
        traded = [b for b in group if not b["empty"]]
        if traded:
            o, c = traded[0]["open"], traded[-1]["close"]
            h, lo = max(b["high"] for b in traded), min(b["low"] for b in traded)
        else:
            o = c = h = lo = group[0]["close"]
        out.append({
            "timestamp_utc": iso_minute(p), "open": plain(o), "high": plain(h), "low": plain(lo), "close": plain(c),
            "volume": plain(sum((b["buy_base"] + b["sell_base"] for b in group), Fraction(0))),
            "quote_volume": plain(sum((b["buy_quote"] + b["sell_quote"] for b in group), Fraction(0))),
            "trade_count": sum(b["count"] for b in group), "_traded": bool(traded), "_end": p + n,
        })
    return out


def wicks(trades: list[dict[str, str]], bars: list[dict], open_minute: int, tf: str = "1h",
          min_pct: str = "0.1") -> list[dict[str, Any]]:
    """Wick and touch events in stream order: a candle's levels exist from its close on."""
    closed = candles(bars, open_minute, tf)
    out: list[dict[str, Any]] = []
    levels: list[dict[str, Any]] = []
    pending = list(closed)
    current = None
    for t in trades:
        m = int(t["ts"]) // 60000
        if current is None or m > current:
            current = m
            while pending and pending[0]["_end"] <= m:
                c = pending.pop(0)
                if not c["_traded"]:
                    continue
                o, cl, h, lo = (Fraction(c[k]) for k in ("open", "close", "high", "low"))
                for side, length, level in (("upper", h - max(o, cl), h), ("lower", min(o, cl) - lo, lo)):
                    if length > 0 and length * 100 >= Fraction(min_pct) * cl:
                        ev = {"event": "wick", "side": side, "level": plain(level), "timestamp_utc": c["timestamp_utc"],
                              "wick_pct": plain(round_half_even(length * 100 / cl, 4))}
                        out.append(ev)
                        levels.append({**ev, "_level": level})
        px = Fraction(t["px"])
        still = []
        for lv in levels:
            if (lv["side"] == "upper" and px >= lv["_level"]) or (lv["side"] == "lower" and px <= lv["_level"]):
                out.append({**{k: v for k, v in lv.items() if not k.startswith("_")}, "event": "touch",
                            "touched_utc": iso_ms(int(t["ts"]))})
            else:
                still.append(lv)
        levels = still
    return out


def strip_private(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]


def whales(trades: list[dict[str, str]], kind: str, ct_val: str, threshold: str = "100000") -> list[dict[str, Any]]:
    """One record per trade with quote notional strictly above ``threshold``, in stream order."""
    out = []
    for t in trades:
        px, sz, base, quote = quantities(t, kind, ct_val)
        if quote > Fraction(threshold):
            out.append({"ts_utc": iso_ms(int(t["ts"])), "trade_id": str(int(t["tradeId"])), "side": t["side"],
                        "px": plain(px), "sz": plain(sz), "notional": plain(quote), "base": plain(base)})
    return out


def poor_levels(trades: list[dict[str, str]], anchor: str = "00:00", min_periods: int = 2) -> list[dict[str, Any]]:
    """Poor highs/lows at each session close (the first trade of a later session), repaired trade by trade."""
    out: list[dict[str, Any]] = []
    levels: list[tuple[str, Fraction, int]] = []
    session = None
    high = low = Fraction(0)
    high_p: set[int] = set()
    low_p: set[int] = set()
    for t in trades:
        m = int(t["ts"]) // 60000
        s = session_of(m, anchor)
        if session is not None and s != session:
            for side, level, periods in (("high", high, high_p), ("low", low, low_p)):
                if len(periods) >= min_periods:
                    out.append({"event": f"poor_{side}", "level": plain(level), "session_start": iso_minute(session),
                                "periods": len(periods)})
                    levels.append((side, level, session))
            session = None
        px = Fraction(t["px"])
        through = [lv for lv in levels if (lv[0] == "high" and px > lv[1]) or (lv[0] == "low" and px < lv[1])]
        for side, level, ss in sorted(through, key=lambda lv: (lv[2], lv[0] != "high")):
            out.append({"event": "repaired", "side": side, "level": plain(level), "session_start": iso_minute(ss),
                        "repaired_utc": iso_ms(int(t["ts"]))})
        levels = [lv for lv in levels if lv not in through]
        period = (m - s) // 30
        if session is None:
            session, high, low, high_p, low_p = s, px, px, {period}, {period}
            continue
        if px > high:
            high, high_p = px, {period}
        elif px == high:
            high_p.add(period)
        if px < low:
            low, low_p = px, {period}
        elif px == low:
            low_p.add(period)
    return out
