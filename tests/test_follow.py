"""Follow mode: appended lines are read as they come, and the wall clock closes bars (SPEC section 2)."""

from __future__ import annotations

import decimal
import json
import shutil
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from indicator_core.instruments import Instrument
from indicator_core.numbers import EXACT
from indicator_core.sources.columnar import parse_chunk
from indicator_core.streams.trade_stream import TradeStream
from tests.test_stream import Recorder
from tests.vaults import ETH_PERP, inst_dir, outputs, run, run_subprocess, trade_line, write_config

INST = Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC")
T0 = 1723161600000
M0 = T0 // 60000


def _feed(stream: TradeStream, rec: Recorder, rows: list[tuple[int, int]]) -> None:
    lines = b"".join(trade_line(INST.inst_id, tid, "100", "1", "buy", ts) for tid, ts in rows)
    with decimal.localcontext(EXACT):
        stream.process(parse_chunk(lines, 1, INST.inst_id), "f", rec)


def _bars(rec: Recorder) -> list[tuple[int, bool]]:
    return [(e[1]["minute"], e[1]["empty"]) for e in rec.events if e[0] == "bar"]


def test_clock_closes_bars_like_a_later_trade_would() -> None:
    rows = [(1, T0), (2, T0 + 60_000), (3, T0 + 120_500)]
    later = [(4, T0 + 7 * 60_000)]
    batch, rec_b = TradeStream(INST, True), Recorder()
    _feed(batch, rec_b, rows + later)
    followed, rec_f = TradeStream(INST, True), Recorder()
    _feed(followed, rec_f, rows)
    with decimal.localcontext(EXACT):
        followed.close_by_clock(T0 + 5 * 60_000 + 5_000, 5_000, rec_f)  # 00:05:05 with a 5 s grace
    # the open bar closes; the empty minutes after it wait for the next trade ("between two traded minutes")
    assert _bars(rec_f) == [(M0, False), (M0 + 1, False), (M0 + 2, False)]
    saved = followed.to_state()
    followed = TradeStream(INST, True)
    followed.set_state(json.loads(json.dumps(saved)))
    _feed(followed, rec_f, later)
    assert _bars(rec_f) == _bars(rec_b)  # the same bars, only some of them earlier


def test_clock_waits_for_the_grace_period() -> None:
    stream, rec = TradeStream(INST, True), Recorder()
    _feed(stream, rec, [(1, T0)])
    with decimal.localcontext(EXACT):
        stream.close_by_clock(T0 + 60_000 + 4_999, 5_000, rec)
    assert _bars(rec) == []
    with decimal.localcontext(EXACT):
        stream.close_by_clock(T0 + 60_000 + 5_000, 5_000, rec)
    assert _bars(rec) == [(M0, False)]


def test_trade_for_a_clock_closed_minute_is_late() -> None:
    stream, rec = TradeStream(INST, True), Recorder()
    _feed(stream, rec, [(1, T0), (2, T0 + 1000)])
    with decimal.localcontext(EXACT):
        stream.close_by_clock(T0 + 60_000 + 5_000, 5_000, rec)
    _feed(stream, rec, [(3, T0 + 30_000), (4, T0 + 61_000), (5, T0 + 121_000)])
    late = [e[1] for e in rec.events if e[0] == "quality" and e[1]["event"] == "late"]
    assert [e["trade_id"] for e in late] == ["3"]
    bars = [e[1] for e in rec.events if e[0] == "bar"]
    assert [(b["minute"], b["trade_count"], b["taint"]) for b in bars] == [(M0, 2, []), (M0 + 1, 1, ["late"])]


@pytest.mark.skipif(sys.platform == "win32", reason="stops the follower with SIGINT")
def whole_and_followed(tmp_path: Path, first: int) -> tuple[list[bytes], Path, Path, Path]:
    """The real ETH day: (its lines, a vault run over all of it, a vault holding its first lines, their file)."""
    lines = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes().splitlines(keepends=True)
    whole = tmp_path / "whole"
    (inst_dir(whole, "ETH-USDT-SWAP") / "trades_2024-08-08.jsonl").write_bytes(b"".join(lines))
    assert run(whole) == 0
    vault = tmp_path / "followed"
    path = inst_dir(vault, "ETH-USDT-SWAP") / "trades_2024-08-08.jsonl"
    path.write_bytes(b"".join(lines[:first]))
    return lines, whole, vault, path


def test_follow_reads_appended_lines_and_stops_cleanly(tmp_path: Path) -> None:
    lines, whole, vault, path = whole_and_followed(tmp_path, 3000)
    # historical trades: a grace of ten years keeps the wall clock from closing their last bar
    cfg = write_config(tmp_path / "c.toml", "[run]\ncommit_seconds = 0.1\n")
    proc = run_subprocess(vault, cfg, "--follow", "--poll", "0.05", "--grace", str(10 * 365 * 86400))
    state = vault / "state" / "volume" / "okx" / "perps" / "ETH-USDT-SWAP.state.json"

    def cursor() -> int:
        try:
            return json.loads(state.read_text())["cursor"]["offset"]
        except (OSError, ValueError, KeyError):
            return -1

    def caught_up() -> None:
        deadline = time.monotonic() + 60
        while cursor() != path.stat().st_size and time.monotonic() < deadline:
            time.sleep(0.05)

    rest = lines[3000:]
    caught_up()
    with open(path, "ab") as f:
        f.write(b"".join(rest[:4000]))
    caught_up()
    with open(path, "ab") as f:  # a writer caught mid-line: the half line must wait
        f.write(rest[4000][:40])
        f.flush()
        time.sleep(0.3)
        f.write(rest[4000][40:])
    caught_up()
    with open(path, "ab") as f:
        f.write(b"".join(rest[4001:]))
    deadline = time.monotonic() + 60
    while cursor() != path.stat().st_size and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert b"stopped" in err
    assert outputs(vault) == outputs(whole)


@pytest.mark.skipif(sys.platform == "win32", reason="kills the follower with SIGKILL")
def test_follower_writes_records_at_once_and_a_kill_before_its_commit_loses_nothing(tmp_path: Path) -> None:
    """Readers see a pass's records at once; a follower killed before it commits leaves a vault the next run completes."""
    lines, whole, vault, path = whole_and_followed(tmp_path, 3000)
    assert run(vault) == 0
    volume = vault / "derived" / "volume" / "okx" / "perps" / "ETH-USDT-SWAP" / "volume_1m.jsonl"
    state = vault / "state" / "volume" / "okx" / "perps" / "ETH-USDT-SWAP.state.json"
    committed, committed_state = volume.stat().st_size, state.read_bytes()
    cfg = write_config(tmp_path / "c.toml", "[run]\ncommit_seconds = 3600\n")  # no commit while it runs
    proc = run_subprocess(vault, cfg, "--follow", "--poll", "0.05", "--grace", str(10 * 365 * 86400))
    with open(path, "ab") as f:
        f.write(b"".join(lines[3000:]))
    deadline = time.monotonic() + 60
    while volume.stat().st_size == committed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert volume.stat().st_size > committed  # the new bars are in the file for its readers
    assert state.read_bytes() == committed_state  # and not committed yet
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert run(vault) == 0  # cuts the uncommitted records and writes them again
    assert outputs(vault) == outputs(whole)
