"""One instrument's problem is that instrument's problem; changed and backfilled files are noticed; a run
with nothing new writes nothing.  All at the command line, with the files on disk."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from indicator_core.cli import main
from tests.resume_cases import config, materialize, reference, streams
from tests.vaults import ETH_PERP, inst_dir, outputs, run, trade_line

ETH_VOLUME = "volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl"


def _state(vault: Path, name: str, inst: str = "ETH-USDT-SWAP") -> Path:
    return vault / "state" / name / "okx" / "perps" / f"{inst}.state.json"


def _eth_day1(vault: Path) -> Path:
    return inst_dir(vault, "ETH-USDT-SWAP") / "trades_2024-08-08.jsonl"


def _only(got: dict[str, bytes], inst: str) -> dict[str, bytes]:
    """The outputs of ``inst``'s trades (its book stream is read on its own and goes on)."""
    books = ("buckets/", "/books.jsonl", "/books_rejects.jsonl")
    return {k: v for k, v in got.items() if f"/{inst}/" in k and not any(b in k for b in books)}


def test_unknown_and_stray_folders_are_their_own_problem(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    materialize(vault, 1.0)
    (inst_dir(vault, "old backup") / "trades_2024-08-08.jsonl").write_bytes(b"")
    (inst_dir(vault, "FOO-BAR-SWAP") / "trades_2024-08-08.jsonl").write_bytes(
        trade_line("FOO-BAR-SWAP", 1, "1.5", "2", "buy", 1723075200000))
    stats = tmp_path / "stats.json"
    assert run(vault, config(tmp_path, 1 << 20), "--stats", str(stats)) == 1
    assert outputs(vault) == reference()  # every known instrument was processed in full
    err = capsys.readouterr().err
    assert "unknown instrument 'FOO-BAR-SWAP'" in err and '[instruments."FOO-BAR-SWAP"]' in err
    # a folder whose name cannot be an instrument is listed as not read, not a failure
    assert "raw/trades/okx/perps/old backup/: not a valid instrument folder name" in err
    assert "needs attention: 1 problem in 1 instrument" in err
    failures = json.loads(stats.read_text())["failures"]
    assert [f["instrument"] for f in failures] == ["okx/perps/FOO-BAR-SWAP"]
    assert all(f["fix"] for f in failures)


def test_a_damaged_state_stops_only_its_indicator(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, 0.5)
    assert run(vault, cfg) == 0
    path = _state(vault, "volume")
    good = path.read_bytes()
    path.write_text("this is not json")
    before = outputs(vault)[ETH_VOLUME]
    materialize(vault, 1.0)
    assert run(vault, cfg) == 1
    err = capsys.readouterr().err
    assert str(path) in err and f"indicators reset --vault {vault} --indicator volume --inst ETH-USDT-SWAP" in err
    got, ref = outputs(vault), reference()
    assert got[ETH_VOLUME] == before  # untouched
    # these read volume's records (the derivs minutes its closes): they wait for them
    waits = ("confluence/okx/perps/ETH-USDT-SWAP/signals.jsonl", "derivs/okx/perps/ETH-USDT-SWAP/derivs_1m.jsonl",
             "liquidations/okx/perps/ETH-USDT-SWAP/liquidations.jsonl")
    for w in waits:
        assert ref[w].startswith(got.get(w, b""))
    assert {k: v for k, v in got.items() if k not in (ETH_VOLUME, *waits)} == \
        {k: v for k, v in ref.items() if k not in (ETH_VOLUME, *waits)}
    path.write_bytes(good)  # restored: it catches up, exactly
    assert run(vault, cfg) == 0
    assert outputs(vault) == ref


def test_an_indicator_that_raises_is_stopped_alone_and_catches_up_once_fixed(tmp_path: Path, monkeypatch, capsys) -> None:
    from indicator_core_plugins.cvd_adapter import Cvd

    real = Cvd.on_bars

    def broken(self, bars, emit):
        self.runs_seen = getattr(self, "runs_seen", 0) + 1  # runs of bars: one a commit or so here
        if self.instrument.inst_id == "ETH-USDT-SWAP" and self.runs_seen == 4:
            raise ZeroDivisionError("a third-party bug")
        real(self, bars, emit)

    vault = tmp_path / "v"
    materialize(vault, 1.0)
    monkeypatch.setattr(Cvd, "on_bars", broken)
    assert run(vault, config(tmp_path, 4096, 0.0001)) == 1  # commits all along: the failure is after some
    err = capsys.readouterr().err
    assert "cvd for okx/perps/ETH-USDT-SWAP" in err and "ZeroDivisionError: a third-party bug" in err
    assert "fix:" in err and "[plugins.cvd]" in err
    got, ref = outputs(vault), reference()
    cvd = "cvd/okx/perps/ETH-USDT-SWAP/cvd_1m.jsonl"
    assert {k: v for k, v in got.items() if k != cvd} == {k: v for k, v in ref.items() if k != cvd}
    assert 0 < len(got[cvd]) < len(ref[cvd]) and ref[cvd].startswith(got[cvd])  # cut back to its last commit
    state = json.loads(_state(vault, "cvd").read_text())
    assert state["outputs"]["cvd_1m"] == len(got[cvd])
    monkeypatch.setattr(Cvd, "on_bars", real)  # the indicator is fixed
    assert run(vault, config(tmp_path, 1 << 20)) == 0
    assert outputs(vault) == ref


def test_a_backfilled_day_is_named_with_the_command_that_takes_it_in(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    folder = inst_dir(vault, "ETH-USDT-SWAP")
    day1, day2 = ETH_PERP / "trades_2024-08-08.jsonl", ETH_PERP / "trades_2024-08-09.jsonl"
    body2 = day2.read_bytes()
    (folder / day2.name).write_bytes(body2[: len(body2) // 2])
    assert run(vault) == 0
    shutil.copy(day1, folder / day1.name)  # the missing day, downloaded again
    (folder / day2.name).write_bytes(body2)  # and today's file goes on
    command = (f"indicators reset --vault {vault} --indicator all --inst ETH-USDT-SWAP && "
               f"indicators run --vault {vault} --inst ETH-USDT-SWAP")
    capsys.readouterr()
    assert main(["run", "--vault", str(vault)]) == 1
    out, err = capsys.readouterr()
    assert "trades_2024-08-08.jsonl" in err and command in err
    assert "okx/perps/ETH-USDT-SWAP: 0 trades" not in out  # the new lines of today's file were read
    assert run(vault) == 1  # not forgotten by the next run
    assert "trades_2024-08-08.jsonl" in capsys.readouterr().err
    assert main(["status", "--vault", str(vault)]) == 0
    out = capsys.readouterr().out
    assert "trades_2024-08-08.jsonl" in out and command in out
    assert main(["status", "--vault", str(vault), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # every indicator that reads the trades names it (record consumers read no trade files)
    assert {tuple(r["backfill"]) for r in rows if r["indicator"] != "confluence"} == {("trades_2024-08-08.jsonl",)}
    # the command takes it in: the outputs of a fresh run over both days
    assert main(["reset", "--vault", str(vault), "--indicator", "all", "--inst", "ETH-USDT-SWAP"]) == 0
    assert main(["run", "--vault", str(vault), "--inst", "ETH-USDT-SWAP", "--quiet"]) == 0
    fresh = tmp_path / "fresh"
    shutil.copytree(folder, inst_dir(fresh, "ETH-USDT-SWAP"), dirs_exist_ok=True)
    assert run(fresh) == 0
    assert outputs(vault) == outputs(fresh)


def _read_offset(vault: Path) -> int:
    cur = json.loads(_state(vault, "quality").read_text())["cursor"]
    assert cur["file"] == "trades_2024-08-08.jsonl"
    return cur["offset"]


def test_a_rewritten_file_stops_its_instrument_until_restored(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, 0.6, at_line_end=True)
    assert run(vault, cfg) == 0
    assert _read_offset(vault) > 0
    before = outputs(vault)
    materialize(vault, 1.0)
    path = _eth_day1(vault)
    true_body = path.read_bytes()
    lines = true_body.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[40:]))  # an exporter restarted and wrote the day again, differently
    assert run(vault, cfg) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "rewritten" in err
    assert f"indicators reset --vault {vault} --indicator all --inst ETH-USDT-SWAP" in err
    got = outputs(vault)
    # nothing read from the changed file; the derivatives went on with their own files (their quality logs grew),
    # their minutes waiting for the closes of volume_1m
    own = ("quality/okx/perps/ETH-USDT-SWAP/derivs.jsonl", "quality/okx/perps/ETH-USDT-SWAP/derivs_rejects.jsonl")
    assert {k: v for k, v in _only(got, "ETH-USDT-SWAP").items() if k not in own} == \
        {k: v for k, v in _only(before, "ETH-USDT-SWAP").items() if k not in own}
    assert _only(got, "BTC-USDT-SWAP") == _only(reference(), "BTC-USDT-SWAP")  # the other instrument went on
    path.write_bytes(true_body)  # the fix: the file as it was (and as it goes on)
    assert run(vault, cfg) == 0
    assert outputs(vault) == reference()


def test_a_file_truncated_below_the_cursor_is_an_error(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, 0.6, at_line_end=True)
    assert run(vault, cfg) == 0
    before = outputs(vault)
    path = _eth_day1(vault)
    offset = _read_offset(vault)
    with open(path, "r+b") as f:
        f.truncate(offset // 2)
    assert run(vault, cfg) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "truncated" in err and "indicators reset" in err
    assert outputs(vault) == before
    # and once it has grown past the old cursor again, with other bytes, it is still refused
    path.write_bytes(path.read_bytes() + b"\n" * offset)
    assert run(vault, cfg) == 1
    assert outputs(vault) == before


def test_old_state_files_without_the_file_records_still_load(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, 0.5)
    assert run(vault, cfg) == 0
    for path in (vault / "state").rglob("*.state.json"):
        state = json.loads(path.read_text())
        state.pop("files_read")
        for key in ("size", "digest"):
            state["cursor"].pop(key, None)
        path.write_text(json.dumps(state, indent=2) + "\n")
    materialize(vault, 1.0)
    assert run(vault, cfg) == 0
    assert outputs(vault) == reference()


OLD = 1_000_000_000 * 10**9  # 2001-09-09, in ns


def _files(vault: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted((vault / "state").rglob("*.json"))
            + sorted((vault / "derived").rglob("*.jsonl"))}


def _age(vault: Path) -> None:
    for p in _files(vault):
        os.utime(p, ns=(OLD, OLD))


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_a_run_with_nothing_new_writes_nothing(tmp_path: Path, fraction: float) -> None:
    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, fraction)  # 0.5: an open minute and a half-written line wait in the state
    assert run(vault, cfg) == 0
    _age(vault)
    before = _files(vault)
    assert len(before) > 20
    assert run(vault, cfg) == 0
    assert _files(vault) == before  # not one state or output rewritten, not even touched


def test_only_the_instrument_with_new_trades_commits(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, 1.0)
    assert run(vault, cfg) == 0
    _age(vault)
    before = _files(vault)
    name, body = streams()["BTC-USDT-SWAP"][-1]
    last = json.loads(body.splitlines()[-1])
    with open(inst_dir(vault, "BTC-USDT-SWAP") / name, "ab") as f:
        f.write(trade_line("BTC-USDT-SWAP", int(last["tradeId"]) + 1, last["px"], "1", "buy", int(last["ts"]) + 60_000))
    assert run(vault, cfg) == 0
    after = _files(vault)
    changed = {p.relative_to(vault).as_posix() for p in before if after[p] != before[p]}
    assert changed and all("BTC-USDT-SWAP" in p for p in changed)
    assert any(p.startswith("state/") for p in changed)


def test_a_follower_commits_only_what_changed(tmp_path: Path) -> None:
    import decimal

    from indicator_core.config import load_config
    from indicator_core.runtime.follow import Follower
    from indicator_core.runtime.host import Host
    from indicator_core.numbers import EXACT

    vault = tmp_path / "v"
    cfg = config(tmp_path, 1 << 20)
    materialize(vault, 1.0)
    assert run(vault, cfg) == 0
    _age(vault)
    before = _files(vault)
    with decimal.localcontext(EXACT.copy()):
        follower = Follower(Host.load(load_config(cfg)), vault)
        never = lambda: 0  # noqa: E731  (the wall clock closes no bar)
        follower.step(never, 0, commit=True)
        follower.commit()
        assert _files(vault) == before  # passes and commits with nothing new write nothing
        name, body = streams()["BTC-USDT-SWAP"][-1]
        last = json.loads(body.splitlines()[-1])
        with open(inst_dir(vault, "BTC-USDT-SWAP") / name, "ab") as f:
            f.write(trade_line("BTC-USDT-SWAP", int(last["tradeId"]) + 1, last["px"], "1", "buy", int(last["ts"]) + 60_000))
        follower.step(never, 0, commit=False)
        follower.commit()
    after = _files(vault)
    changed = {p.relative_to(vault).as_posix() for p in before if after[p] != before[p]}
    assert changed and all("BTC-USDT-SWAP" in p for p in changed)
