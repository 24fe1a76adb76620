"""Binance USDⓈ-M and Bybit v5 order books (SPEC section 15), on real recorded frames and on made-up faults.

Real: ``binance/ws-usdm-2021-07-22.jsonl`` holds depth updates and the REST snapshots fetched during the
recording for four symbols; each book must synchronise on its snapshot and chain with no gap, and its
book at the close must equal an independent reading (the snapshot, then every update from the one that
straddles it, applied with plain dicts).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from indicator_core.cli import main
from tests.vaults import outputs, run, write_config

USDM = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "binance" / "ws-usdm-2021-07-22.jsonl"
SYMBOLS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")
CONFIG = "".join(f'[instruments.{s}]\nkind = "linear"\nct_val = "1"\nct_val_ccy = "{s[:-4]}"\n' for s in SYMBOLS)


def per_symbol() -> dict[str, list[bytes]]:
    """Each symbol's depth updates and REST snapshot, in arrival order (the snapshot's added name dropped)."""
    if not USDM.is_file():
        pytest.skip("no shared/data beside this checkout")
    out: dict[str, list[bytes]] = {}
    for line in USDM.read_bytes().splitlines():
        doc = orjson.loads(line)
        if "snapshot_of" in doc:
            sym = doc.pop("snapshot_of")
            out.setdefault(sym, []).append(orjson.dumps(doc))
        elif doc["data"]["e"] == "depthUpdate":
            out.setdefault(doc["data"]["s"], []).append(line)
    return out


def independent_book(lines: list[bytes], before_ms: int) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
    """SPEC 15 read plainly, up to ``before_ms``: the snapshot, skip updates with u < S, apply from the one with
    U <= S <= u on."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    snap = None
    for line in lines:
        doc = orjson.loads(line)
        if doc.get("T", doc.get("data", {}).get("T", 0)) >= before_ms:
            break
        if "lastUpdateId" in doc:
            snap = doc["lastUpdateId"]
            bids = {Decimal(p): Decimal(q) for p, q in doc["bids"]}
            asks = {Decimal(p): Decimal(q) for p, q in doc["asks"]}
            continue
        u = doc["data"]
        if snap is None or u["u"] < snap:
            continue
        for side, levels in ((bids, u["b"]), (asks, u["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
    return bids, asks


def book_vault(root: Path, books: dict[str, list[bytes]], exchange: str = "binance") -> Path:
    for sym, lines in books.items():
        d = root / "raw" / "books" / exchange / "perps" / sym
        d.mkdir(parents=True, exist_ok=True)
        (d / "books_2021-07-22.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


def test_real_binance_books_sync_on_their_snapshots_chain_without_a_gap_and_match_a_plain_reading(tmp_path: Path,
                                                                                                  capsys) -> None:
    books = per_symbol()
    vault = book_vault(tmp_path / "v", books)
    cfg = write_config(tmp_path / "c.toml", CONFIG)
    assert run(vault, cfg) == 0
    capsys.readouterr()
    assert main(["status", "--vault", str(vault), "--config", str(cfg), "--json"]) == 0
    rows = {r["instrument"]: r for r in json.loads(capsys.readouterr().out) if r.get("indicator") == "quality"}
    for sym in SYMBOLS:
        row = rows[f"binance/perps/{sym}"]
        assert (row["seq_gaps"], row["rejects"], row["snapshots"], row["valid"]) == (0, 0, 1, True), row
        bucket = json.loads((vault / f"derived/buckets/binance/perps/{sym}/buckets_1m.jsonl").read_text().splitlines()[-1])
        from indicator_core.timeutil import minute_of_iso

        bids, asks = independent_book(books[sym], (minute_of_iso(bucket["timestamp_utc"]) + 1) * 60_000)
        assert bucket["valid"] and not bucket["taint"]
        assert Decimal(bucket["best_bid"]) == max(bids) and Decimal(bucket["best_ask"]) == min(asks), sym


def test_a_missing_binance_update_is_a_sequence_gap_until_the_next_snapshot(tmp_path: Path) -> None:
    lines = per_symbol()["SUSHIUSDT"]
    snap = next(k for k, x in enumerate(lines) if b"lastUpdateId" in x)
    cut = lines[:snap + 20] + lines[snap + 21:]  # an update lost after the book synchronised
    vault = book_vault(tmp_path / "v", {"SUSHIUSDT": cut + [lines[snap]]})  # the snapshot again at the end: a resync
    assert run(vault, write_config(tmp_path / "c.toml", CONFIG)) == 0
    events = [json.loads(x) for x in (vault / "derived/quality/binance/perps/SUSHIUSDT/books.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["seq_gap", "resync"]
    gap = orjson.loads(lines[snap + 21])["data"]
    assert events[0]["prevSeqId"] == gap["pu"] and events[0]["seqId"] == gap["u"]


def bybit_lines(symbol: str = "BTCUSDT") -> list[bytes]:
    def push(kind: str, u: int, ts: int, b: list, a: list, cts: int | None = None) -> bytes:
        doc = {"topic": f"orderbook.50.{symbol}", "type": kind, "ts": ts,
               "data": {"s": symbol, "b": b, "a": a, "u": u, "seq": 1000 + u}}
        if cts is not None:
            doc["cts"] = cts
        return orjson.dumps(doc)

    t = 1732320000000  # 2024-11-23 00:00
    return [
        push("snapshot", 100, t + 10, [["90000.0", "1.5"], ["89999.5", "2"]], [["90000.5", "1"], ["90001.0", "3"]]),
        push("delta", 101, t + 20, [["90000.0", "0"]], [], cts=t + 19),  # the best bid leaves
        push("delta", 101, t + 30, [["90000.0", "0"]], []),  # the same push again: a duplicate
        push("delta", 102, t + 60_010, [], [["90000.5", "0.25"]]),
        push("delta", 104, t + 60_020, [["89999.0", "1"]], []),  # 103 missing: a gap
        push("delta", 105, t + 60_030, [], []),  # skipped while invalid
        push("snapshot", 1, t + 120_010, [["89990.0", "1"]], [["89991.0", "1"]]),  # the venue restarted: u = 1
        push("delta", 2, t + 120_020, [["89990.5", "2"]], []),
        push("delta", 3, t + 180_020, [], []),
    ]


def test_bybit_books_duplicates_gaps_and_the_restart(tmp_path: Path, capsys) -> None:
    vault = book_vault(tmp_path / "v", {"BTCUSDT": bybit_lines()}, "bybit")
    assert run(vault) == 0
    q = [json.loads(x) for x in (vault / "derived/quality/bybit/perps/BTCUSDT/books.jsonl").read_text().splitlines()]
    assert [(e["event"], e["seqId"]) for e in q] == [("seq_gap", 104), ("resync", 1)]
    minutes = [json.loads(x) for x in (vault / "derived/buckets/bybit/perps/BTCUSDT/buckets_1m.jsonl").read_text().splitlines()]
    assert [(m["timestamp_utc"][11:16], m["valid"], m["best_bid"]) for m in minutes] == [
        ("00:00", True, "89999.5"), ("00:01", False, None), ("00:02", True, "89990.5")]
    capsys.readouterr()
    assert main(["status", "--vault", str(vault), "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r.get("indicator") == "quality")
    assert (row["duplicates"], row["seq_gaps"], row["resyncs"]) == (1, 1, 1)


def test_venue_books_cut_into_runs_equal_one_run(tmp_path: Path) -> None:
    books = {s: ls for s, ls in per_symbol().items() if s in ("SUSHIUSDT", "CTKUSDT")}
    cfg = write_config(tmp_path / "c.toml", CONFIG + "\n[run]\nbatch_bytes = 2048\n")
    whole = book_vault(tmp_path / "whole", books)
    assert run(whole, cfg) == 0
    cut = tmp_path / "cut"
    for k in (7, 60, 61, 130, None):
        book_vault(cut, {s: ls[:k] for s, ls in books.items()})
        assert run(cut, cfg) == 0
    assert outputs(cut) == outputs(whole)


def test_a_real_bybit_orderbook_recording_stays_in_sequence_and_matches_a_plain_reading(tmp_path: Path) -> None:
    """Bybit's own archive of XRPUSDT orderbook.500 (a snapshot and 49 deltas, ``u`` continuous)."""
    from tests.vaults import DATA

    lines = (DATA / "bybit" / "ws-orderbook500-XRPUSDT-linear-2024-12-01.jsonl").read_bytes().splitlines()
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    for line in lines:  # the plain reading: a snapshot replaces, a delta sets, "0" removes
        doc = orjson.loads(line)
        if doc["type"] == "snapshot":
            bids, asks = {}, {}
        for side, levels in ((bids, doc["data"]["b"]), (asks, doc["data"]["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
    closing = orjson.dumps({"topic": "orderbook.500.XRPUSDT", "type": "delta", "ts": 1733011260100,
                            "data": {"s": "XRPUSDT", "b": [], "a": [], "u": 20254919, "seq": 1}})
    vault = book_vault(tmp_path / "v", {"XRPUSDT": lines + [closing]}, "bybit")  # one more push closes the minute
    assert run(vault) == 0
    minute = json.loads((vault / "derived/buckets/bybit/perps/XRPUSDT/buckets_1m.jsonl").read_text().splitlines()[0])
    assert minute["valid"] and not minute["taint"]
    assert Decimal(minute["best_bid"]) == max(bids) and Decimal(minute["best_ask"]) == min(asks)
    events = vault / "derived/quality/bybit/perps/XRPUSDT/books.jsonl"
    assert not events.exists() or not events.read_text()  # no gap, no resync


def test_real_bybit_and_binance_samples_of_other_sources_are_read_whole() -> None:
    """Frames recorded by other projects (tests/data/README.md): every trade read, nothing rejected."""
    from indicator_core.instruments import InstrumentTable
    from indicator_core.sources import bybit
    from tests.vaults import DATA

    pushes = (DATA / "bybit" / "ws-publicTrade-2023-04-05.jsonl").read_bytes()
    for symbol in ("BTCUSD", "LTCUSDT"):
        mine = b"".join(x + b"\n" for x in pushes.splitlines() if f'"publicTrade.{symbol}"'.encode() in x)
        got = bybit.parse_lines(mine, 1, symbol)
        want = [t for x in mine.splitlines() for t in orjson.loads(x)["data"]]
        assert not got.rejects and got.keys.tolist() == [t["i"] for t in want]
    t = InstrumentTable()
    t.load_file(DATA / "binance" / "fapi-v1-exchangeInfo-2021-07-22.json")
    btc = t.get("BTCUSDT")
    assert (btc.kind, btc.ct_val, btc.ct_val_ccy) == ("linear", 1, "BTC")
