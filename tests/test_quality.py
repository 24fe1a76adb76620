"""SPEC section 7: every class of bad input is skipped, logged and counted; good trades around it are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vaults import inst_dir, read_jsonl, run, trade_line, write_config

INST = "BTC-USDT-SWAP"
T0 = 1723161600000  # 2024-08-09 00:00:00 UTC


def good(k: int, minute: int = 0, side: str = "buy", px: str = "60000.5") -> bytes:
    return trade_line(INST, 1000 + k, px, "1", side, T0 + minute * 60_000 + k)


def _vault(tmp_path: Path, lines: list[bytes]) -> Path:
    vault = tmp_path / "v"
    (inst_dir(vault, INST) / "trades_2024-08-09.jsonl").write_bytes(b"".join(lines))
    return vault


def _status(vault: Path) -> dict:
    state = json.loads((vault / "state" / "quality" / "okx" / "perps" / f"{INST}.state.json").read_text())
    return state["stream"]["counters"]


def _volume(vault: Path) -> list[dict]:
    return read_jsonl(vault / "derived" / "volume" / "okx" / "perps" / INST / "volume_1m.jsonl")


def _rejects(vault: Path) -> list[dict]:
    path = vault / "derived" / "quality" / "okx" / "perps" / INST / "rejects.jsonl"
    return read_jsonl(path) if path.exists() else []


BAD_LINES = {
    "invalid JSON": (b'{"instId":"BTC-USDT-SWAP","tradeId":"1003","px":\n', "invalid JSON"),
    "missing field": (b'{"instId":"BTC-USDT-SWAP","tradeId":"1003","px":"1","side":"buy","ts":"1723161600003"}\n', "missing field 'sz'"),
    "non-numeric price": (trade_line(INST, 1003, "abc", "1", "buy", T0 + 3), "px is not a decimal number"),
    "negative price": (trade_line(INST, 1003, "-60000", "1", "buy", T0 + 3), "px is negative"),
    "negative size": (trade_line(INST, 1003, "60000", "-2", "buy", T0 + 3), "sz is negative"),
    "zero size": (trade_line(INST, 1003, "60000", "0", "buy", T0 + 3), "sz is zero"),
    "exponent price": (trade_line(INST, 1003, "6e4", "1", "buy", T0 + 3), "px is not a decimal number"),
    "unknown side": (trade_line(INST, 1003, "60000", "1", "hold", T0 + 3), "unknown side 'hold'"),
    "empty line": (b"\n", "empty line"),
    "blank line": (b"   \n", "empty line"),
    "not an object": (b"[1, 2, 3]\n", "not a trade object"),
    "other instrument": (trade_line("ETH-USDT-SWAP", 1003, "3000", "1", "buy", T0 + 3), "instId 'ETH-USDT-SWAP'"),
    "non-integer ts": (b'{"instId":"BTC-USDT-SWAP","tradeId":"1003","px":"1","sz":"1","side":"buy","ts":"12.5"}\n', "ts is not an integer"),
}


@pytest.mark.parametrize("kind", sorted(BAD_LINES))
def test_bad_line_is_rejected_and_neighbours_kept(tmp_path: Path, kind: str) -> None:
    bad, reason = BAD_LINES[kind]
    lines = [good(0), good(1), good(2), bad, good(4), good(5), good(6, minute=1)]
    vault = _vault(tmp_path, lines)
    assert run(vault) == 0
    rejects = _rejects(vault)
    assert len(rejects) == 1, rejects
    assert rejects[0]["file"] == f"raw/trades/okx/perps/{INST}/trades_2024-08-09.jsonl"
    assert rejects[0]["line"] == 4
    assert reason in rejects[0]["reason"]
    assert _status(vault)["rejects"] == 1
    (bar,) = _volume(vault)  # minute 0 closed by the trade of minute 1
    assert bar["trade_count"] == 5  # the five good trades around the bad line
    assert bar["total_volume"] == "3000.025"  # 5 × 60000.5 × 1 contract × 0.01 BTC


def test_bom_and_crlf_are_read_not_rejected(tmp_path: Path) -> None:
    """A BOM at a file start and Windows line ends are encodings of good data: read, never dropped."""
    lines = [b"\xef\xbb\xbf" + good(0), good(1).replace(b"\n", b"\r\n"), good(2).replace(b"\n", b"\r\n"), good(3, minute=1)]
    vault = _vault(tmp_path, lines)
    assert run(vault) == 0
    assert _rejects(vault) == []
    (bar,) = _volume(vault)
    assert bar["trade_count"] == 3


def test_duplicates_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = [good(0), good(1), good(0), good(2), good(1), good(3, minute=1)]
    vault = _vault(tmp_path, lines)
    assert run(vault) == 0
    assert _status(vault)["duplicates"] == 2
    (bar,) = _volume(vault)
    assert bar["trade_count"] == 3
    assert bar["taint"] == [] and bar["tainted"] is False


def test_gap_is_logged_and_taints_the_next_bar(tmp_path: Path) -> None:
    lines = [good(0), good(1), good(5, minute=1), good(6, minute=1), good(7, minute=2)]
    vault = _vault(tmp_path, lines)
    assert run(vault) == 0
    (gap,) = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / INST / "gaps.jsonl")
    assert gap == {
        "inst_id": INST, "prev_trade_id": "1001", "prev_utc": "2024-08-09T00:00:00.001Z",
        "next_trade_id": "1005", "next_utc": "2024-08-09T00:01:00.005Z", "missing": 3,
    }
    bars = _volume(vault)
    assert [b["tainted"] for b in bars] == [False, True]
    assert bars[1]["taint"] == ["gap"]
    assert _status(vault)["gaps"] == 1 and _status(vault)["missing_ids"] == 3


def test_gap_filled_later_is_not_a_duplicate(tmp_path: Path) -> None:
    lines = [good(0), good(2), good(1), good(3, minute=1)]
    vault = _vault(tmp_path, lines)
    assert run(vault) == 0
    (bar,) = _volume(vault)
    assert bar["trade_count"] == 3
    assert _status(vault)["duplicates"] == 0


def test_late_trade_is_logged_counted_and_taints_the_open_bar(tmp_path: Path) -> None:
    big_late = trade_line(INST, 1003, "60000", "500", "sell", T0 + 30_000)  # minute 0, after minute 1 opened
    lines = [good(0), good(1), good(2, minute=1), big_late, good(4, minute=1), good(5, minute=2)]
    vault = _vault(tmp_path, lines)
    assert run(vault) == 0
    (late,) = read_jsonl(vault / "derived" / "quality" / "okx" / "perps" / INST / "late.jsonl")
    assert late["trade_id"] == "1003" and late["sz"] == "500" and late["side"] == "sell"
    assert late["bar_utc"] == "2024-08-09T00:00:00Z" and late["open_bar_utc"] == "2024-08-09T00:01:00Z"
    bars = _volume(vault)
    assert [b["trade_count"] for b in bars] == [2, 2]  # the late trade is in neither bar
    assert bars[0]["taint"] == [] and bars[1]["taint"] == ["late"]
    assert _status(vault)["late"] == 1


def test_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    full = good(2, minute=1)
    vault = _vault(tmp_path, [good(0), good(1), full[:30]])
    assert run(vault) == 0
    assert _rejects(vault) == []
    assert _status(vault)["trades"] == 2
    path = inst_dir(vault, INST) / "trades_2024-08-09.jsonl"
    with open(path, "ab") as f:
        f.write(full[30:])
    assert run(vault) == 0
    assert _status(vault)["trades"] == 3
    assert _rejects(vault) == []
    assert [b["trade_count"] for b in _volume(vault)] == [2]


def test_websocket_push_lines(tmp_path: Path) -> None:
    push = {"arg": {"channel": "trades", "instId": INST}, "data": [json.loads(good(k)) for k in range(3)]}
    vault = _vault(tmp_path, [json.dumps(push).encode() + b"\n", good(3, minute=1)])
    assert run(vault) == 0
    (bar,) = _volume(vault)
    assert bar["trade_count"] == 3


@pytest.mark.parametrize("fill", [True, False])
def test_empty_minutes_filled_or_not(tmp_path: Path, fill: bool) -> None:
    vault = _vault(tmp_path, [good(0, px="100"), good(1, minute=3, px="101"), good(2, minute=4)])
    cfg = write_config(tmp_path / "c.toml", f"[run]\nfill_empty_bars = {str(fill).lower()}\n")
    assert run(vault, cfg) == 0
    bars = _volume(vault)
    if fill:
        assert [b["timestamp_utc"][11:16] for b in bars] == ["00:00", "00:01", "00:02", "00:03"]
        assert [b["empty"] for b in bars] == [False, True, True, False]
        assert bars[1]["open"] == bars[1]["close"] == bars[1]["high"] == bars[1]["low"] == "100"
        assert bars[1]["total_volume"] == "0" and bars[1]["trade_count"] == 0
    else:
        assert [b["timestamp_utc"][11:16] for b in bars] == ["00:00", "00:03"]
