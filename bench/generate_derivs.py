"""Generate derivatives days as a venue would push them (SPEC section 17), for tests and the benchmark.

    python bench/generate_derivs.py --out VAULT [--inst BTC-USDT-SWAP] [--days 2] [--oi-every 1]
                                    [--liquidations 10000] [--seed 7]

writes ``VAULT/raw/derivs/okx/perps/{INST}/derivs_{date}.jsonl``: an
``open-interest`` push every ``--oi-every`` seconds, a ``funding-rate`` push
every minute (the interval changing 8 h -> 4 h -> 1 h over the days, as OKX
moves contracts), and ``--liquidations`` liquidation details a day, mostly in
bursts, some pushes repeated (a reconnect) and some a few seconds out of time
order (as OKX says its liquidation feed can be).  Every line is a real push
shape (compare ``tests/data/derivs/okx/``).  Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import orjson

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def day_start(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()) * 1000


def _oi(inst: str, ts: int, oi: int, ct_val: float) -> bytes:
    return orjson.dumps({"arg": {"channel": "open-interest", "instId": inst},
                         "data": [{"instId": inst, "instType": "SWAP", "oi": str(oi),
                                   "oiCcy": f"{oi * ct_val:.4f}".rstrip("0").rstrip("."), "ts": str(ts)}]})


def _funding(inst: str, ts: int, rate: str, interval_h: int) -> bytes:
    step = interval_h * HOUR_MS
    funding_time = (ts // step + 1) * step
    return orjson.dumps({"arg": {"channel": "funding-rate", "instId": inst},
                         "data": [{"fundingRate": rate, "fundingTime": str(funding_time), "instId": inst,
                                   "instType": "SWAP", "method": "current_period",
                                   "nextFundingTime": str(funding_time + step), "ts": str(ts)}]})


def _liq(inst: str, details: list[dict]) -> bytes:
    family = inst.rsplit("-", 1)[0]
    return orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                         "data": [{"details": details, "instFamily": family, "instId": inst, "instType": "SWAP",
                                   "uly": family}]})


def interval_for(day_index: int) -> int:
    """The funding interval of a generated day: 8 h, then 4 h, then 1 h."""
    return (8, 4, 1)[min(day_index, 2)]


def okx_day(inst: str, day: str, day_index: int = 0, oi_every: int = 1, liquidations: int = 10_000,
            seed: int = 7, px: float = 60_000.0, ct_val: float = 0.01) -> Iterator[bytes]:
    """The lines of one day, in receive order."""
    rnd = random.Random(f"{seed}-{inst}-{day}")
    start = day_start(day)
    interval = interval_for(day_index)
    # liquidation times: bursts around a few moments, the rest spread over the day
    times: list[int] = []
    bursts = [start + rnd.randrange(DAY_MS) for _ in range(20)]
    for _ in range(liquidations):
        if rnd.random() < 0.7:
            t = rnd.choice(bursts) + int(rnd.expovariate(1 / 20_000))
        else:
            t = start + rnd.randrange(DAY_MS)
        times.append(min(t, start + DAY_MS - 1))
    times.sort()
    liq_lines: list[tuple[int, bytes]] = []
    k = 0
    while k < len(times):
        n = rnd.choice((1, 1, 1, 2, 3))
        while n > 1 and (k + n > len(times) or times[k + n - 1] - times[k] > 1000):
            n -= 1  # one push holds the liquidations of about one second
        details = []
        for t in times[k:k + n]:
            side = rnd.choice(("buy", "sell"))
            details.append({"bkLoss": "0", "bkPx": f"{px * (1 + rnd.uniform(-0.02, 0.02)):.1f}",
                            "ccy": "", "posSide": "short" if side == "buy" else "long", "side": side,
                            "sz": str(rnd.choice((1, 2, 5, 10, 50, 200, 1000, 5000))), "ts": str(t)})
        recv = times[min(k + n, len(times)) - 1] + rnd.randrange(0, 300)
        if rnd.random() < 0.01:
            recv += rnd.randrange(1000, 5000)  # pushed out of time order
        line = _liq(inst, details)
        liq_lines.append((recv, line))
        if rnd.random() < 0.005:
            liq_lines.append((recv + 1, line))  # repeated after a reconnect
        k += n
    liq_lines.sort(key=lambda x: x[0])
    oi = 2_000_000 + rnd.randrange(100_000)
    rate = rnd.randrange(-200, 400)
    j = 0
    for sec in range(0, 86_400):
        ts = start + sec * 1000
        while j < len(liq_lines) and liq_lines[j][0] < ts:
            yield liq_lines[j][1]
            j += 1
        if sec % oi_every == 0:
            oi = max(1, oi + rnd.randrange(-500, 501))
            yield _oi(inst, ts + rnd.randrange(0, 50), oi, ct_val)
        if sec % 60 == 30:
            rate = max(-750, min(750, rate + rnd.randrange(-5, 6)))
            yield _funding(inst, ts + 7, f"{rate / 1_000_000:.6f}".rstrip("0").rstrip(".") or "0", interval)
    for _, line in liq_lines[j:]:
        yield line


def okx_window(inst: str, start_ms: int, seconds: int, seed: int = 3, oi_every: int = 2,
               liq_every: int = 3, ct_val: float = 0.1, px: float = 2600.0) -> Iterator[tuple[int, bytes]]:
    """``(receive ms, line)`` of a short stretch, dirty on purpose: pushes a few seconds out of order, some
    past ``late_seconds`` (10), repeated ones, another instrument's liquidations, a funding interval change
    from 8 h to 4 h halfway, and bad lines."""
    rnd = random.Random(seed)
    out: list[tuple[int, bytes]] = []
    oi = 1_500_000
    for sec in range(seconds):
        ts = start_ms + sec * 1000
        if sec % oi_every == 0:
            oi += rnd.randrange(-300, 301)
            out.append((ts, _oi(inst, ts + 3, oi, ct_val)))
        if sec % 30 == 11:
            out.append((ts, _funding(inst, ts + 1, f"0.0000{rnd.randrange(10, 99)}", 8 if sec < seconds // 2 else 4)))
        if sec % liq_every == 1:
            side = rnd.choice(("buy", "sell"))
            t = ts - (rnd.randrange(2000, 8000) if rnd.random() < 0.1 else 0)  # out of order, within late_seconds
            if rnd.random() < 0.03:
                t = ts - 40_000  # far out of order: late
            detail = {"bkLoss": "0", "bkPx": f"{px * (1 + rnd.uniform(-0.01, 0.01)):.2f}", "ccy": "",
                      "posSide": "short" if side == "buy" else "long", "side": side,
                      "sz": str(rnd.choice((1, 3, 20, 150, 900))), "ts": str(t)}
            line = _liq(inst, [detail])
            out.append((ts + 50, line))
            if rnd.random() < 0.05:
                out.append((ts + 60, line))  # repeated
        if sec % 97 == 5:
            out.append((ts + 70, _liq("BTC-USDT-SWAP", [{"bkLoss": "0", "bkPx": "60000", "ccy": "", "posSide": "long",
                                                          "side": "sell", "sz": "5", "ts": str(ts)}])))
        if sec % 131 == 7:
            out.append((ts + 80, b'{"arg":{"channel":"open-interest","instId":"%s"},"data":[{"oi":"x","ts":"%d"}]}'
                        % (inst.encode(), ts)))
        if sec % 173 == 9:
            out.append((ts + 90, b'{"event":"subscribe","arg":{"channel":"open-interest","instId":"%s"}}'
                        % inst.encode()))
    out.sort(key=lambda x: x[0])
    return iter(out)


def write_days(vault: Path, inst: str = "BTC-USDT-SWAP", days: int = 2, first_day: str = "2026-11-23",
               **kw) -> list[Path]:
    folder = vault / "raw" / "derivs" / "okx" / "perps" / inst
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    start = day_start(first_day)
    for d in range(days):
        day = datetime.fromtimestamp((start + d * DAY_MS) / 1000, timezone.utc).date().isoformat()
        path = folder / f"derivs_{day}.jsonl"
        with open(path, "wb") as f:
            for line in okx_day(inst, day, d, **kw):
                f.write(line + b"\n")
        out.append(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--inst", default="BTC-USDT-SWAP")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--first-day", default="2026-11-23")
    ap.add_argument("--oi-every", type=int, default=1)
    ap.add_argument("--liquidations", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    for p in write_days(a.out, a.inst, a.days, a.first_day, oi_every=a.oi_every, liquidations=a.liquidations,
                        seed=a.seed):
        print(p)


if __name__ == "__main__":
    main()
