"""Late trades as columns: the quality log's lines from the columns are the bytes of the dicts, on both paths;
a file with a block of trades out of order writes what it always wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core import jsonlines
from indicator_core.quality import QualityLog
from indicator_core.quality_events import Gaps, LateTrades, RejectedLines
from tests.kernel_paths import on_both_paths
from tests.vaults import ETH_2023, inst_dir, outputs, read_jsonl, run

kernel_path = on_both_paths("json", jsonlines)

T0 = 1675296000000  # 2023-02-02T00:00:00Z


def late(rows: list[tuple], text_ids: bool = False) -> LateTrades:
    cols = list(zip(*rows)) if rows else [()] * 9
    trade_id, ts, minute_gap, behind, buy, px_m, px_s, sz_m, sz_s = cols
    minute = np.array([(t // 60_000) - b for t, b in zip(ts, behind)], dtype=np.int64)
    ids: object = [f"id-{i}" for i in trade_id] if text_ids else np.array(trade_id, dtype=np.int64)
    return LateTrades("ETH-USDT-SWAP", np.arange(len(rows), dtype=np.int64), ids, np.array(ts, dtype=np.int64),
                      minute, minute + np.array(minute_gap, dtype=np.int64), np.array(buy, dtype=bool),
                      *(np.array(c, dtype=np.int64) for c in (px_m, px_s, sz_m, sz_s)))


row = st.tuples(st.integers(1, 2**62), st.integers(T0, T0 + 40 * 86_400_000), st.integers(1, 3000),
                st.integers(0, 5), st.booleans(), st.integers(1, 10**12), st.integers(0, 9),
                st.integers(1, 10**9), st.integers(0, 9))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=40), text_ids=st.booleans())
def test_the_lines_from_columns_are_the_dicts_as_orjson_writes_them(rows, text_ids) -> None:
    events = late(rows, text_ids)
    want = b"".join(orjson.dumps({k: v for k, v in e.items() if k != "event"}, option=orjson.OPT_APPEND_NEWLINE)
                    for e in events.events())
    assert events.json_lines() == want


def test_a_block_taken_apart_keeps_its_order_and_the_quality_log_writes_it_once() -> None:
    events = late([(10 + k, T0 + 61_000 * k, 1, 0, k % 2 == 0, 1500 + k, 1, 25, 2) for k in range(6)])
    assert events.before(3) == 3 and events.take(slice(3, None)).events() == events.events()[3:]
    written: list[tuple[str, bytes]] = []
    QualityLog.__new__(QualityLog).on_quality_events(events, lambda stream, lines: written.append((stream, lines)))
    assert [s for s, _ in written] == ["late"] and written[0][1].count(b"\n") == 6
    assert json.loads(written[0][1].splitlines()[0]) == {
        "inst_id": "ETH-USDT-SWAP", "trade_id": "10", "trade_utc": "2023-02-02T00:00:00.000Z",
        "bar_utc": "2023-02-02T00:00:00Z", "open_bar_utc": "2023-02-02T00:01:00Z", "side": "buy", "px": "150",
        "sz": "0.25"}


def test_a_block_of_trades_out_of_order_and_a_block_read_twice(tmp_path: Path, monkeypatch) -> None:
    """A day whose middle third comes last (every trade of it late, filling the gap its absence opened) and a day
    whose lines are all there twice: the outputs the events one by one gave (the late log, the gap, the
    duplicates)."""
    lines = (ETH_2023 / "trades_2023-02-02.jsonl").read_bytes().splitlines(keepends=True)
    n = len(lines) // 3

    def vault_of(name: str, body: list[bytes]) -> Path:
        vault = tmp_path / name
        (inst_dir(vault, "ETH-USDT-SWAP") / "trades_2023-02-02.jsonl").write_bytes(b"".join(body))
        assert run(vault) == 0
        return vault

    moved = vault_of("moved", lines[:n] + lines[2 * n:] + lines[n:2 * n])
    logged = read_jsonl(moved / "derived/quality/okx/perps/ETH-USDT-SWAP/late.jsonl")
    assert [r["trade_id"] for r in logged] == [json.loads(x)["tradeId"] for x in lines[n:2 * n]]
    counters = json.loads((moved / "state/quality/okx/perps/ETH-USDT-SWAP.state.json").read_text())["stream"]["counters"]
    assert counters["late"] == n and counters["duplicates"] == 0 and counters["gaps"] == 1
    twice = vault_of("twice", lines + lines)
    counters = json.loads((twice / "state/quality/okx/perps/ETH-USDT-SWAP.state.json").read_text())["stream"]["counters"]
    assert counters["duplicates"] == len(lines)
    assert outputs(twice) == outputs(vault_of("once", lines))
    # the reference: each late trade to the quality log as a dict, one by one (Indicator.on_quality_events)
    monkeypatch.delattr(QualityLog, "on_quality_events")
    assert outputs(moved) == outputs(vault_of("moved_one_by_one", lines[:n] + lines[2 * n:] + lines[n:2 * n]))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 2**62), st.integers(T0, T0 + 40 * 86_400_000), st.integers(1, 10**9)),
                     min_size=1, max_size=40))
def test_gap_lines_from_columns_are_the_dicts_as_orjson_writes_them(rows) -> None:
    prev_id, prev_ts, missing = (list(c) for c in zip(*rows))
    gaps = Gaps("ETH-USDT-SWAP", prev_id, prev_ts, [p + m + 1 for p, m in zip(prev_id, missing)],
                [t + 5 for t in prev_ts], missing)
    want = b"".join(orjson.dumps({k: v for k, v in e.items() if k != "event"}, option=orjson.OPT_APPEND_NEWLINE)
                    for e in gaps.events())
    assert gaps.json_lines() == want


def test_a_file_holding_every_other_trade_writes_a_gap_line_for_each(tmp_path: Path, monkeypatch) -> None:
    """Every other trade missing: a gap at each trade, each reported, as the events one by one wrote them."""
    lines = (ETH_2023 / "trades_2023-02-02.jsonl").read_bytes().splitlines(keepends=True)[::2]
    vault = tmp_path / "every_other"
    (inst_dir(vault, "ETH-USDT-SWAP") / "trades_2023-02-02.jsonl").write_bytes(b"".join(lines))
    assert run(vault) == 0
    gaps = read_jsonl(vault / "derived/quality/okx/perps/ETH-USDT-SWAP/gaps.jsonl")
    state = json.loads((vault / "state/quality/okx/perps/ETH-USDT-SWAP.state.json").read_text())["stream"]
    assert len(gaps) == state["counters"]["gaps"] == len(lines) - 1 - len(state["pending_gaps"])
    monkeypatch.delattr(QualityLog, "on_quality_events")
    reference = tmp_path / "one_by_one"
    (inst_dir(reference, "ETH-USDT-SWAP") / "trades_2023-02-02.jsonl").write_bytes(b"".join(lines))
    assert run(reference) == 0
    assert outputs(vault) == outputs(reference)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 10**9), st.text(max_size=30), st.text(max_size=60)), min_size=1,
                     max_size=30))
def test_reject_lines_from_columns_are_the_dicts_as_orjson_writes_them(rows) -> None:
    """Any text: quotes, backslashes, control characters and non-ASCII among it."""
    lines, reasons, texts = (list(c) for c in zip(*rows))
    rejects = RejectedLines("raw/trades/okx/perps/ETH-USDT-SWAP/trades_2023-02-02.jsonl", lines, reasons, texts)
    want = b"".join(orjson.dumps({k: v for k, v in e.items() if k != "event"}, option=orjson.OPT_APPEND_NEWLINE)
                    for e in rejects.events())
    assert rejects.json_lines() == want


def test_a_damaged_file_writes_a_reject_line_for_each_bad_line(tmp_path: Path, monkeypatch) -> None:
    """A line cut short after every good one: each refused, with its reason, as the events one by one wrote them."""
    good = (ETH_2023 / "trades_2023-02-02.jsonl").read_bytes().splitlines(keepends=True)
    body = b"".join(x for line in good for x in (line, line[:40] + b"\n"))

    def vault_of(name: str) -> Path:
        vault = tmp_path / name
        (inst_dir(vault, "ETH-USDT-SWAP") / "trades_2023-02-02.jsonl").write_bytes(body)
        assert run(vault) == 0
        return vault

    damaged = vault_of("damaged")
    rejects = read_jsonl(damaged / "derived/quality/okx/perps/ETH-USDT-SWAP/rejects.jsonl")
    assert [r["line"] for r in rejects] == list(range(2, 2 * len(good) + 1, 2))
    monkeypatch.delattr(QualityLog, "on_quality_events")
    assert outputs(damaged) == outputs(vault_of("one_by_one"))
