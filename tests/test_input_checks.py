"""What a user's files can do: bad timestamps are rejected, reordered ids are not gaps (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indicator_core.cli import main
from tests.vaults import ETH_2023, inst_dir, outputs, read_jsonl, run, write_config

INST = "ETH-USDT-SWAP"
NAME = "trades_2023-02-02.jsonl"
QUALITY = f"quality/okx/perps/{INST}"
CONFIG = """
[plugins.volume]
median_min_bars = 1

[plugins.candles]
timeframes = ["1m", "5m"]

[plugins.wicks]
timeframe = "1m"
min_wick_pct = "0.01"
"""


def eth_lines() -> list[bytes]:
    return ETH_2023.joinpath(NAME).read_bytes().splitlines(keepends=True)


def run_lines(root: Path, lines: list[bytes], name: str = NAME) -> dict[str, bytes]:
    """One run over ``lines`` in a fresh vault; its outputs by path under derived/."""
    vault = root / "vault"
    (inst_dir(vault, INST) / name).write_bytes(b"".join(lines))
    assert run(vault, write_config(root / "c.toml", CONFIG)) == 0
    return outputs(vault)


def with_ts(line: bytes, ts: int) -> bytes:
    obj = json.loads(line)
    obj["ts"] = str(ts)
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def without(out: dict[str, bytes], *names: str) -> dict[str, bytes]:
    return {k: v for k, v in out.items() if k.rsplit("/", 1)[-1] not in names}


@pytest.mark.parametrize("scale,why", [
    (1000, "microseconds"),  # an exporter writing µs
    (None, "not epoch milliseconds"),  # the year 10000
])
def test_implausible_ts_is_rejected_and_changes_nothing_else(tmp_path: Path, scale, why) -> None:
    lines = eth_lines()
    ts = int(json.loads(lines[500])["ts"])
    bad = with_ts(lines[500], ts * scale if scale else 253402300800000)
    clean = run_lines(tmp_path / "clean", lines[:500] + lines[501:])
    dirty = run_lines(tmp_path / "dirty", lines[:500] + [bad] + lines[501:])
    rejects = [json.loads(x) for x in dirty[f"{QUALITY}/rejects.jsonl"].splitlines()]
    assert len(rejects) == 1
    assert rejects[0]["file"] == f"raw/trades/okx/perps/{INST}/{NAME}" and rejects[0]["line"] == 501
    assert why in rejects[0]["reason"]
    assert without(dirty, "rejects.jsonl") == without(clean, "rejects.jsonl")
    # the missing trade is a gap in both runs: the rejected line is not a trade
    assert dirty[f"{QUALITY}/gaps.jsonl"] == clean[f"{QUALITY}/gaps.jsonl"]


def test_a_trade_one_day_ahead_is_rejected_and_later_trades_are_not_late(tmp_path: Path) -> None:
    lines = eth_lines()
    ahead = with_ts(lines[300], int(json.loads(lines[300])["ts"]) + 86_400_000)
    clean = run_lines(tmp_path / "clean", lines[:300] + lines[301:])
    dirty = run_lines(tmp_path / "dirty", lines[:300] + [ahead] + lines[301:])
    reject = json.loads(dirty[f"{QUALITY}/rejects.jsonl"])
    assert reject["line"] == 301 and "outside the file's day 2023-02-02" in reject["reason"]
    assert f"{QUALITY}/late.jsonl" not in dirty or dirty[f"{QUALITY}/late.jsonl"] == b""
    assert without(dirty, "rejects.jsonl") == without(clean, "rejects.jsonl")


def test_many_lines_outside_their_day_are_summed_up_with_their_likely_cause(tmp_path: Path, capsys) -> None:
    """A file holding days of trades beyond its own: the run's summary says how many lines were refused for their
    time and what usually causes that, beside the rejects log's first ten and one line for the rest."""
    lines = eth_lines()
    ahead = [with_ts(line, int(json.loads(line)["ts"]) + 86_400_000) for line in lines[300:340]]
    vault = tmp_path / "vault"
    (inst_dir(vault, INST) / NAME).write_bytes(b"".join(lines[:300] + ahead + lines[340:]))
    assert main(["run", "--vault", str(vault), "--config", str(write_config(tmp_path / "c.toml", CONFIG))]) == 0
    out = capsys.readouterr().out
    assert "40 rejects" in out
    assert "40 of the rejects are trades outside their file's day" in out and "[input] day_offsets" in out
    assert len(read_jsonl(vault / f"derived/{QUALITY}/rejects.jsonl")) == 10  # the rest once the stream moves on


def test_tolerance_either_side_of_the_day(tmp_path: Path) -> None:
    """A trade a few minutes past the file's midnight (a file rolled late) is read; one far past it is not."""
    lines = eth_lines()[:3]
    day_end = 1675382400000  # 2023-02-03T00:00:00Z
    base = int(json.loads(lines[-1])["ts"])
    ok = with_ts(lines[-1], day_end + 9 * 60_000).replace(b'"tradeId":"', b'"tradeId":"9')
    far = with_ts(lines[-1], day_end + 11 * 60_000).replace(b'"tradeId":"', b'"tradeId":"99')
    assert base < day_end
    out = run_lines(tmp_path, [*lines, ok, far])
    rejects = [json.loads(x) for x in out[f"{QUALITY}/rejects.jsonl"].splitlines()]
    assert [r["line"] for r in rejects] == [5]


def test_okx_archive_days_are_utc_plus_8(tmp_path: Path) -> None:
    """OKX's archive file of 2023-08-21 holds trades of 2023-08-20 16:01 UTC: read, not rejected."""
    from tests.vaults import OKX

    vault = tmp_path / "v"
    name = "MATIC-USDT-SWAP-trades-2023-08-21.csv"
    body = (OKX / name).read_bytes()
    (inst_dir(vault, "MATIC-USDT-SWAP") / name).write_bytes(body)
    # the same rows under a UTC-day name are a day's worth off: rejected
    (inst_dir(vault, "MATIC-USDT-SWAP") / "trades_2023-08-21.csv").write_bytes(body.replace(b"104136", b"204136"))
    assert run(vault) == 0
    state = json.loads((vault / "state/quality/okx/perps/MATIC-USDT-SWAP.state.json").read_text())
    assert state["stream"]["counters"]["accepted"] == 14
    rejects = read_jsonl(vault / "derived/quality/okx/perps/MATIC-USDT-SWAP/rejects.jsonl")
    # the file's first ten are listed one by one, the other four counted in one line (once the stream moved on)
    assert sum(r.get("lines", 1) for r in rejects) == 14 and all(r["file"].endswith("trades_2023-08-21.csv") for r in rejects)
    assert len(rejects) == 11 and rejects[-1]["lines"] == 4 and rejects[-1]["line"] == 12
    assert rejects[-1]["reason"].startswith("4 more lines refused for their time (not listed one by one), from 2023-08-")
    assert "UTC, ±10 min" in rejects[0]["reason"] and "UTC, ±10 min" in rejects[-1]["reason"]


def test_follow_rejects_a_trade_ahead_of_the_clock(tmp_path: Path) -> None:
    from indicator_core.config import Config
    from indicator_core.runtime.follow import Follower
    from indicator_core.runtime.host import Host

    lines = eth_lines()[:50]
    now = int(json.loads(lines[20])["ts"])
    vault = tmp_path / "v"
    (inst_dir(vault, INST) / NAME).write_bytes(b"".join(lines))
    follower = Follower(Host.load(Config()), vault)
    follower.step(lambda: now - 6 * 60_000, 10**12, commit=True)  # the clock says: 6 minutes earlier
    rejects = read_jsonl(vault / f"derived/{QUALITY}/rejects.jsonl")
    # a file's first ten such lines are listed; the other forty are counted, and summed up once the file is left
    assert len(rejects) == 10 and "ahead of the clock" in rejects[0]["reason"]
    state = json.loads((vault / f"state/{QUALITY}.state.json").read_text())
    assert state["stream"]["counters"]["rejects"] == 50 and state["stream"]["outside"]["lines"] == 40


def test_trades_swapped_within_a_minute_are_not_a_gap(tmp_path: Path) -> None:
    lines = eth_lines()
    swapped = list(lines)
    swapped[300], swapped[302] = swapped[302], swapped[300]  # ids 1206419487 and ...489, one minute
    clean = run_lines(tmp_path / "clean", lines)
    out = run_lines(tmp_path / "swapped", swapped)
    assert not out.get(f"{QUALITY}/gaps.jsonl")
    volume = [json.loads(x) for x in out[f"volume/okx/perps/{INST}/volume_1m.jsonl"].splitlines()]
    assert volume and not any(b["tainted"] for b in volume)
    assert out == clean


def test_a_true_gap_is_still_reported(tmp_path: Path) -> None:
    lines = eth_lines()
    out = run_lines(tmp_path, lines[:300] + lines[302:])  # two trades really missing
    gaps = [json.loads(x) for x in out[f"{QUALITY}/gaps.jsonl"].splitlines()]
    assert [(g["prev_trade_id"], g["next_trade_id"], g["missing"]) for g in gaps] == [("1206419486", "1206419489", 2)]
    volume = [json.loads(x) for x in out[f"volume/okx/perps/{INST}/volume_1m.jsonl"].splitlines()]
    assert [b["timestamp_utc"] for b in volume if "gap" in b["taint"]] == ["2023-02-02T09:21:00Z"]


def test_a_missing_id_that_comes_after_its_bar_closed_is_a_gap(tmp_path: Path) -> None:
    """The reorder window is the open minute: an id filled only once the bar holding the jump closed
    was missing when it closed (and is late)."""
    lines = eth_lines()
    moved = lines[:300] + lines[301:700] + [lines[300]] + lines[700:]  # line 700 is a minute later
    out = run_lines(tmp_path, moved)
    gaps = [json.loads(x) for x in out[f"{QUALITY}/gaps.jsonl"].splitlines()]
    assert [(g["next_trade_id"], g["missing"]) for g in gaps] == [("1206419488", 1)]
    late = [json.loads(x) for x in out[f"{QUALITY}/late.jsonl"].splitlines()]
    assert [x["trade_id"] for x in late] == ["1206419487"]


# --- discovery: what is not read is listed --------------------------------------------


def test_stray_files_and_folders_are_listed_once_and_the_rest_is_read(tmp_path: Path, capsys) -> None:
    from indicator_core.cli import main

    vault = tmp_path / "v"
    folder = inst_dir(vault, INST)
    (folder / NAME).write_bytes(ETH_2023.joinpath(NAME).read_bytes())
    (folder / "trades-2023-02-03.json").write_text("{}\n")  # another naming
    (folder / "trades_2023-02-31.jsonl").write_text("{}\n")  # not a day
    (folder / "old").mkdir()  # one level too deep
    (folder / "old" / "trades_2023-02-01.jsonl").write_text("{}\n")
    stray = inst_dir(vault, "old backup")  # a name with a space, holding a trade file
    (stray / NAME).write_bytes(ETH_2023.joinpath(NAME).read_bytes())
    (vault / "raw/trades/notes.txt").write_text("x")
    (vault / "raw/trades/okx/perps/.DS_Store").write_text("x")  # hidden: not worth a line
    assert main(["run", "--vault", str(vault), "--quiet"]) == 0
    err = capsys.readouterr().err
    listed = [line.strip() for line in err.splitlines() if line.startswith("  raw/")]
    assert listed == [
        "raw/trades/notes.txt: a file where exchange folders belong",
        "raw/trades/okx/perps/old backup/: not a valid instrument folder name (letters, digits, '.', '_', '-')",
        f"raw/trades/okx/perps/{INST}/old/: a folder inside an instrument folder (trade files go directly in it)",
        f"raw/trades/okx/perps/{INST}/trades-2023-02-03.json: matches no file pattern",
        f"raw/trades/okx/perps/{INST}/trades_2023-02-31.jsonl: matches no file pattern",
    ]
    assert "trades_{date}.jsonl" in err and "{inst}-trades-{date}.zip" in err
    volume = vault / f"derived/volume/okx/perps/{INST}/volume_1m.jsonl"
    assert len(read_jsonl(volume)) == 3
    assert not (vault / "derived/volume/okx/perps/old backup").exists()


def test_follow_lists_a_stray_file_once(tmp_path: Path) -> None:
    from indicator_core.config import Config
    from indicator_core.runtime.follow import Follower
    from indicator_core.runtime.host import Host

    vault = tmp_path / "v"
    (inst_dir(vault, INST) / NAME).write_bytes(ETH_2023.joinpath(NAME).read_bytes())
    (inst_dir(vault, INST) / "notes.txt").write_text("x")
    follower = Follower(Host.load(Config()), vault)
    first = follower.step(lambda: 1675382400000, 10**12, commit=True)
    second = follower.step(lambda: 1675382400000, 10**12, commit=True)
    assert [s.path for s in first.skipped] == [f"raw/trades/okx/perps/{INST}/notes.txt"]
    assert second.skipped == []


def test_the_declaration_the_unknown_instrument_message_suggests_is_accepted(tmp_path: Path, capsys) -> None:
    from indicator_core.cli import main

    vault = tmp_path / "v"
    odd = "ethusdt_perp.v2"
    body = ETH_2023.joinpath(NAME).read_bytes().replace(INST.encode(), odd.encode())
    (inst_dir(vault, odd) / NAME).write_bytes(body)
    assert main(["run", "--vault", str(vault), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert f'[instruments."{odd}"]' in err
    cfg = write_config(tmp_path / "c.toml", f'[instruments."{odd}"]\nkind = "linear"\nct_val = "0.1"\nct_val_ccy = "ETH"\n')
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 0
    assert (vault / f"derived/volume/okx/perps/{odd}/volume_1m.jsonl").exists()
    bad = write_config(tmp_path / "bad.toml", '[instruments."old backup"]\nkind = "spot"\nct_val = "1"\nct_val_ccy = "X"\n')
    assert main(["run", "--vault", str(vault), "--config", str(bad), "--quiet"]) == 2
    assert "'old backup' is not an instrument id" in capsys.readouterr().err


# --- compressed closed days -------------------------------------------------------------


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def _eth_perp_vault(root: Path, gz_first_day: bool, batch: int = 1 << 22) -> tuple[Path, Path]:
    from tests.vaults import ETH_PERP

    vault = root / "v"
    folder = inst_dir(vault, INST)
    day1 = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes()
    if gz_first_day:
        (folder / "trades_2024-08-08.jsonl.gz").write_bytes(_gzip(day1))
    else:
        (folder / "trades_2024-08-08.jsonl").write_bytes(day1)
    (folder / "trades_2024-08-09.jsonl").write_bytes((ETH_PERP / "trades_2024-08-09.jsonl").read_bytes())
    cfg = write_config(root / "c.toml", CONFIG + f"\n[run]\nbatch_bytes = {batch}\ncommit_seconds = 0.0001\n")
    return vault, cfg


def test_a_gzipped_day_gives_the_outputs_of_the_plain_day(tmp_path: Path) -> None:
    plain, cfg = _eth_perp_vault(tmp_path / "plain", False)
    assert run(plain, cfg) == 0
    gz, cfg_gz = _eth_perp_vault(tmp_path / "gz", True, batch=65536)  # many chunks, a commit after each
    assert run(gz, cfg_gz) == 0
    expected = outputs(plain)
    assert outputs(gz) == expected and len(expected[f"volume/okx/perps/{INST}/volume_1m.jsonl"].splitlines()) >= 6
    state = json.loads((gz / f"state/quality/okx/perps/{INST}.state.json").read_text())
    assert state["cursor"]["file"] == "trades_2024-08-09.jsonl"


def test_a_gzipped_day_cut_between_runs_resumes_exactly(tmp_path: Path) -> None:
    """A run stopped inside the .gz (its outputs cut back to an earlier commit) continues from the
    decompressed offset it committed."""
    plain, cfg = _eth_perp_vault(tmp_path / "plain", False)
    assert run(plain, cfg) == 0
    vault, cfg_gz = _eth_perp_vault(tmp_path / "gz", True, batch=65536)
    day2 = inst_dir(vault, INST) / "trades_2024-08-09.jsonl"
    hidden = day2.read_bytes()
    day2.unlink()  # first run: only the .gz
    assert run(vault, cfg_gz) == 0
    state = json.loads((vault / f"state/volume/okx/perps/{INST}.state.json").read_text())
    assert state["cursor"]["file"] == "trades_2024-08-08.jsonl.gz" and state["cursor"]["at_end"]
    day2.write_bytes(hidden)
    assert run(vault, cfg_gz) == 0
    assert outputs(vault) == outputs(plain)


def test_a_truncated_gz_stops_with_a_message_and_is_read_once_complete(tmp_path: Path, capsys) -> None:
    from indicator_core.cli import main

    plain, cfg = _eth_perp_vault(tmp_path / "plain", False)
    assert run(plain, cfg) == 0
    vault, cfg_gz = _eth_perp_vault(tmp_path / "gz", True)
    gz = inst_dir(vault, INST) / "trades_2024-08-08.jsonl.gz"
    whole = gz.read_bytes()
    gz.write_bytes(whole[: len(whole) // 2])  # still being downloaded
    assert main(["run", "--vault", str(vault), "--config", str(cfg_gz), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "trades_2024-08-08.jsonl.gz" in err and "run again once it is complete" in err and "Traceback" not in err
    gz.write_bytes(whole)
    assert run(vault, cfg_gz) == 0
    assert outputs(vault) == outputs(plain)


def test_okx_zip_archive_is_read_like_its_csv(tmp_path: Path) -> None:
    import io
    import zipfile

    from tests.vaults import OKX

    name = "MATIC-USDT-SWAP-trades-2023-08-21"
    body = (OKX / f"{name}.csv").read_bytes()
    csv_vault, zip_vault = tmp_path / "csv", tmp_path / "zip"
    (inst_dir(csv_vault, "MATIC-USDT-SWAP") / f"{name}.csv").write_bytes(body)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.csv", body)
    (inst_dir(zip_vault, "MATIC-USDT-SWAP") / f"{name}.zip").write_bytes(buf.getvalue())
    # the next archive day's first trade closes the minute, so the archive's bar is written
    later = b"instrument_name,trade_id,side,price,size,created_time\nMATIC-USDT-SWAP,104136800,buy,0.5744,1.0,1692633600000\n"
    for v in (csv_vault, zip_vault):
        (inst_dir(v, "MATIC-USDT-SWAP") / "MATIC-USDT-SWAP-trades-2023-08-22.csv").write_bytes(later)
        assert run(v) == 0
    got = outputs(zip_vault)
    assert got == outputs(csv_vault)
    bar = json.loads(got["volume/okx/perps/MATIC-USDT-SWAP/volume_1m.jsonl"].splitlines()[0])
    # OKX's own candle of the minute: open 0.5747, high 0.5748, low 0.5744, close 0.5744, 6889.352 USDT
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["total_volume"]) == (
        "0.5747", "0.5748", "0.5744", "0.5744", "6889.352")


def test_one_jump_in_time_fills_at_most_31_days_of_empty_bars() -> None:
    """A defence behind the checks: two accepted trades ten years apart do not write ten years of bars."""
    import decimal
    from decimal import Decimal

    from indicator_core.instruments import Instrument
    from indicator_core.numbers import EXACT
    from indicator_core.sources.columnar import parse_chunk
    from indicator_core.streams.trade_stream import MAX_FILL_MINUTES, TradeStream
    from tests.vaults import trade_line

    class Counter:
        bars: list[int] = []

        def quality(self, event) -> None: ...
        def trades(self, batch) -> None: ...
        def takes_minute_trades(self) -> bool: return True
        def chunk_trades(self, batch) -> None: ...

        def empty_bars(self, first, count, price) -> None:
            self.bars.extend(range(first, first + count))
            assert len(self.bars) <= MAX_FILL_MINUTES + 1, "unbounded fill"
        def advance(self, minute) -> None: ...

        def bar(self, bar) -> None:
            self.bars.append(bar.minute)
            assert len(self.bars) <= MAX_FILL_MINUTES + 1, "unbounded fill"

    inst = Instrument("BTC-USDT-SWAP", "linear", Decimal("0.01"), "BTC")
    t0 = 1_400_000_000_000
    lines = [trade_line(inst.inst_id, 1, "100", "1", "buy", t0),
             trade_line(inst.inst_id, 2, "101", "1", "buy", t0 + 10 * 365 * 86_400_000)]
    sink = Counter()
    stream = TradeStream(inst, fill_empty=True)
    with decimal.localcontext(EXACT):
        stream.process(parse_chunk(b"".join(lines), 1, inst.inst_id), "f", sink)
    last = (t0 + 10 * 365 * 86_400_000) // 60_000
    assert len(sink.bars) == MAX_FILL_MINUTES + 1
    assert sink.bars[0] == t0 // 60_000 and sink.bars[1:] == list(range(last - MAX_FILL_MINUTES, last))
