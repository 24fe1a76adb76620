"""Hand-built vaults of committed outputs (volume_1m, confluence signals, buckets) whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

from indicator_core.timeutil import iso_minute

T0 = 28_870_000  # a minute: 2024-11-23T...; bars start here


def bar(i: int, close: float | str, *, high=None, low=None, open_=None, delta="0", pcp="0", tier="T2",
        absorption=False, divergence=False, whale_buy="0", whale_sell="0", whale_count=0, empty=False,
        inst="BTC-USDT-SWAP", volume="1000") -> dict:
    c = str(close)
    return {
        "timestamp_utc": iso_minute(T0 + i), "inst_id": inst,
        "open": str(open_ if open_ is not None else close), "high": str(high if high is not None else close),
        "low": str(low if low is not None else close), "close": c,
        "total_volume": "0" if empty else volume, "buy_volume": "0", "sell_volume": "0", "delta": delta,
        "trade_count": 0 if empty else 3, "whale_volume": "0", "whale_count": whale_count,
        "whale_buy_volume": whale_buy, "whale_sell_volume": whale_sell, "volume_median": "1000",
        "volume_ratio": "1", "volume_tier": tier, "price_change_pct": pcp, "absorption": absorption,
        "divergence": divergence, "empty": empty, "tainted": False, "taint": [],
    }


def write_output(vault: Path, indicator: str, inst: str, stream: str, records: list[dict],
                 uncommitted: list[dict] = (), exchange: str = "okx", market: str = "perps") -> Path:
    """Write records as committed output of ``indicator`` (its state names their length), plus an uncommitted tail."""
    folder = vault / "derived" / indicator / exchange / market / inst
    folder.mkdir(parents=True, exist_ok=True)
    data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
    tail = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in uncommitted)
    path = folder / f"{stream}.jsonl"
    path.write_bytes(data + tail)
    state = vault / "state" / indicator / exchange / market / f"{inst}.state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(state.read_text()) if state.exists() else {"format": 1, "indicator": indicator,
                                                                   "inst_id": inst, "outputs": {}}
    old["outputs"][stream] = len(data)
    state.write_text(json.dumps(old))
    return path


def write_volume(vault: Path, inst: str, bars: list[dict], uncommitted: list[dict] = ()) -> Path:
    return write_output(vault, "volume", inst, "volume_1m", bars, uncommitted)


def book_minutes(vault: Path, inst: str, minutes: list[tuple[str, float]], step: int = 10, seed: int = 7) -> Path:
    """``buckets_1m`` records (SPEC 11) around the given (timestamp_utc, mid) pairs, with a bid and an ask wall."""
    import random

    rnd = random.Random(seed)
    recs = []
    for ts, mid in minutes:
        walls = (int(mid // (10 * step)) * 10 * step - 10 * step, int(mid // (10 * step)) * 10 * step + 20 * step)
        bid0 = int(mid // step * step)
        ask0 = bid0 + step
        bids = [[str(bid0 - k * step), str(rnd.randint(20_000, 300_000 if k % 5 else 900_000))] for k in range(40)]
        asks = [[str(ask0 + k * step), str(rnd.randint(20_000, 300_000 if k % 5 else 900_000))] for k in range(40)]
        for side, wall in ((bids, walls[0]), (asks, walls[1])):  # a wall that stays at its price
            for cell in side:
                if int(cell[0]) == wall:
                    cell[1] = str(rnd.randint(2_500_000, 4_000_000))
        bw = max(bids, key=lambda x: int(x[1]))
        aw = max(asks, key=lambda x: int(x[1]))
        recs.append({
            "timestamp_utc": ts, "valid": True, "book_ts": ts.replace(":00Z", ":59.900Z"), "best_bid": str(bid0),
            "best_ask": str(ask0), "mid": str((bid0 + ask0) / 2), "spread_bps": "1", "step": str(step),
            "bid_depth": "1", "ask_depth": "1", "imbalance": "0", "bids": bids, "asks": asks,
            "bid_wall": {"price": bw[0], "notional": bw[1]}, "ask_wall": {"price": aw[0], "notional": aw[1]},
            "tainted": False, "taint": [],
        })
    return write_output(vault, "buckets", inst, "buckets_1m", recs)
