"""What a user's typo or a machine's state can do at the command line: never destroy data, never a traceback."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shlex
import sys
from pathlib import Path

import orjson
import pytest

from indicator_core import cli
from indicator_core.cli import main
from indicator_core.runtime.summary import RunSummary, InstrumentSummary
from indicator_core.storage import InstrumentKey
from tests.resume_cases import materialize
from tests.vaults import outputs, run, write_config

ETH_STATE = Path("state") / "volume" / "okx" / "perps" / "ETH-USDT-SWAP.state.json"


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch) -> None:
    """The built-in indicators only, whatever else this Python has installed."""
    monkeypatch.setenv("INDICATOR_CORE_DISABLE_ENTRYPOINTS", "1")


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """A vault after one run: two instruments, every indicator, the quality log."""
    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)
    assert run(v) == 0
    return v


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` with its bytes (None for a folder)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = None if p.is_dir() else p.read_bytes()
    return out


# ---- indicators reset -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", "../raw", "..\\raw", "ABSOLUTE", "nosuch", "volume/okx", "volume\\okx", "", "."])
def test_reset_refuses_a_path_or_an_unknown_indicator_and_deletes_nothing(tmp_path: Path, vault: Path, capsys, name: str) -> None:
    outside = tmp_path / "outside"
    (outside / "okx" / "perps" / "ETH-USDT-SWAP").mkdir(parents=True)
    (outside / "okx" / "perps" / "ETH-USDT-SWAP" / "mine.jsonl").write_text("precious\n")
    if name == "ABSOLUTE":
        name = str(outside)
    before, before_outside = snapshot(tmp_path / "v"), snapshot(outside)
    capsys.readouterr()
    assert main(["reset", "--vault", str(vault), "--indicator", name]) == 2
    err = capsys.readouterr().err
    assert "nothing was deleted" in err and "Traceback" not in err
    assert snapshot(vault) == before
    assert snapshot(outside) == before_outside


def test_reset_refuses_when_any_name_is_bad_even_after_good_ones(vault: Path, capsys) -> None:
    before = snapshot(vault)
    assert main(["reset", "--vault", str(vault), "--indicator", "volume", "--indicator", "../raw"]) == 2
    assert snapshot(vault) == before


@pytest.mark.parametrize("inst", ["..", "../ETH-USDT-SWAP", "..\\ETH-USDT-SWAP", "NOPE-USDT-SWAP", "perps", "ETH-USDT-SWAP.state.json"])
def test_reset_refuses_an_instrument_that_is_not_in_the_vault(vault: Path, capsys, inst: str) -> None:
    before = snapshot(vault)
    assert main(["reset", "--vault", str(vault), "--indicator", "all", "--inst", inst]) == 2
    assert "nothing was deleted" in capsys.readouterr().err
    assert snapshot(vault) == before


def test_reset_lists_and_deletes_only_the_indicators_own_files(tmp_path: Path, vault: Path, capsys) -> None:
    notes = vault / "derived" / "volume" / "okx" / "perps" / "ETH-USDT-SWAP" / "notes.txt"
    notes.write_text("mine")
    stray = vault / "state" / "volume" / "okx" / "perps" / "README"
    stray.write_text("mine")
    before = snapshot(vault)
    full = outputs(vault)
    capsys.readouterr()
    assert main(["reset", "--vault", str(vault), "--indicator", "volume", "--inst", "ETH-USDT-SWAP"]) == 0
    out = capsys.readouterr().out
    gone = {
        "state/volume/okx/perps/ETH-USDT-SWAP.state.json",
        "derived/volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl",
        # confluence reads volume's records, so it is reset with it (SPEC section 12)
        *(k for k in before if k.startswith(("state/confluence/okx/perps/ETH-USDT-SWAP.",
                                             "derived/confluence/okx/perps/ETH-USDT-SWAP/"))),
        # and the derivatives indicators: their stream prices the open interest with volume's closes (SPEC 17)
        *(k for k in before if k.startswith(tuple(f"state/{n}/okx/perps/ETH-USDT-SWAP." for n in ("derivs", "liquidations"))
                                            + tuple(f"derived/{n}/okx/perps/ETH-USDT-SWAP" for n in ("derivs", "liquidations")))),
    }
    assert "also resetting confluence: it reads the records of volume" in out
    assert "also resetting derivs: it reads the records of volume" in out
    files = [k for k in gone if before[k] is not None]  # an emptied output folder goes too
    for rel in files:
        assert str(Path(rel)) in out
    assert f"deleted {len(files)} files" in out
    after = snapshot(vault)
    assert set(before) - set(after) == gone
    assert all(after[k] == before[k] for k in after if k != "state/.lock")
    assert notes.read_text() == "mine" and stray.read_text() == "mine"
    assert run(vault) == 0  # rebuilt, identical
    assert outputs(vault) == full


def test_reset_all_is_every_installed_indicator_and_the_quality_log(vault: Path, capsys) -> None:
    raw = snapshot(vault / "raw")
    full = outputs(vault)
    (vault / "derived" / "old_plugin" / "okx" / "perps" / "ETH-USDT-SWAP").mkdir(parents=True)
    leftover = vault / "derived" / "old_plugin" / "okx" / "perps" / "ETH-USDT-SWAP" / "x_1m.jsonl"
    leftover.write_text("{}\n")
    assert main(["reset", "--vault", str(vault), "--indicator", "all", "--dry-run"]) == 0
    assert outputs(vault) == {**full, "old_plugin/okx/perps/ETH-USDT-SWAP/x_1m.jsonl": b"{}\n"}
    assert main(["reset", "--vault", str(vault), "--indicator", "all"]) == 0
    assert outputs(vault) == {"old_plugin/okx/perps/ETH-USDT-SWAP/x_1m.jsonl": b"{}\n"}  # not installed: not ours
    assert not list((vault / "state").rglob("*.state.json"))
    assert snapshot(vault / "raw") == raw
    assert run(vault) == 0
    leftover.unlink()
    assert outputs(vault) == full


def test_reset_waits_for_no_one_and_deletes_nothing_while_a_run_holds_an_instrument(vault: Path, capsys) -> None:
    from indicator_core.lock import InstrumentLock
    from indicator_core.storage import InstrumentKey

    before = snapshot(vault)
    with InstrumentLock(vault, InstrumentKey("okx", "perps", "ETH-USDT-SWAP")):  # what a run holds
        assert main(["reset", "--vault", str(vault), "--indicator", "all"]) == 1
    captured = capsys.readouterr()
    assert "okx/perps/ETH-USDT-SWAP: another run" in captured.err and "deleting" not in captured.out
    assert snapshot(vault) == before


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_reset_never_follows_a_link_out_of_the_vault(tmp_path: Path, vault: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "volume_1m.jsonl").write_text("keep\n")
    link = vault / "derived" / "volume" / "okx" / "perps" / "LINKED-USDT-SWAP"
    link.symlink_to(elsewhere, target_is_directory=True)
    (vault / "state" / "volume" / "okx" / "perps" / "ELSE.state.json").symlink_to(elsewhere / "volume_1m.jsonl")
    assert main(["reset", "--vault", str(vault), "--indicator", "volume"]) == 0
    assert (elsewhere / "volume_1m.jsonl").read_text() == "keep\n"


# ---- a missing vault, read-only folders, a full disk ---------------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["run", "--follow"], ["status"], ["reset", "--indicator", "volume"]])
def test_a_wrong_vault_creates_nothing(tmp_path: Path, capsys, command: list[str]) -> None:
    missing = tmp_path / "no" / "such"
    assert main([command[0], "--vault", str(missing), *command[1:]]) == 2
    assert not (tmp_path / "no").exists()
    assert "no such folder" in capsys.readouterr().err
    not_a_vault = tmp_path / "Downloads"  # exists, but holds no trades
    not_a_vault.mkdir()
    status = main([command[0], "--vault", str(not_a_vault), *command[1:]])
    assert status in (0, 2)
    assert status == 2 or command[0] != "run"
    assert list(not_a_vault.iterdir()) == []  # no state/.lock left behind
    assert "Traceback" not in capsys.readouterr().err


def test_the_lock_never_creates_a_vault(tmp_path: Path) -> None:
    from indicator_core.errors import IndicatorError
    from indicator_core.lock import VaultLock

    with pytest.raises(IndicatorError, match="no vault"):
        with VaultLock(tmp_path / "typo"):
            pass
    assert not (tmp_path / "typo").exists()


def _failing(monkeypatch, vault: Path, code: int) -> None:
    """Every attempt to open a file for writing under ``state/`` fails with ``code`` (as on a read-only mount)."""
    real_open, real_os_open = open, os.open
    state = str(vault / "state")

    def guarded_open(file, mode="r", *a, **kw):
        if str(file).startswith(state) and any(c in mode for c in "wax+"):
            raise OSError(code, os.strerror(code), str(file))
        return real_open(file, mode, *a, **kw)

    def guarded_os_open(path, flags, *a, **kw):
        if str(path).startswith(state) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(code, os.strerror(code), str(path))
        return real_os_open(path, flags, *a, **kw)

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("command", ["run", "reset"])
def test_read_only_state_is_a_message(tmp_path: Path, vault: Path, monkeypatch, capsys, code: int, command: str) -> None:
    before = snapshot(vault)
    _failing(monkeypatch, vault, code)
    # --jobs 1: the failing file system is this process's (worker processes would not see the patch)
    args = ["run", "--vault", str(vault), "--jobs", "1"] if command == "run" else ["reset", "--vault", str(vault), "--indicator", "volume"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert os.strerror(code) in err and str(vault / "state") in err and "must be writable" in err
    assert snapshot(vault) == before


@pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="file modes do not stop the superuser (and Windows has none)")
def test_read_only_state_by_file_mode(tmp_path: Path, vault: Path, capsys) -> None:
    (vault / "state" / ".lock").unlink()
    for p in [vault / "state", *(vault / "state").rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        assert main(["run", "--vault", str(vault)]) == 1
        assert "writable" in capsys.readouterr().err
    finally:
        for p in [vault / "state", *(vault / "state").rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_a_file_where_the_state_folder_belongs(tmp_path: Path, capsys) -> None:
    """Fails for every user, the superuser included."""
    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)
    (v / "state").write_text("not a folder")
    assert main(["run", "--vault", str(v), "--quiet", "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert str(v / "state") in err and "a file is in the way" in err
    assert outputs(v) == {}


def test_full_disk_everywhere_is_a_message(tmp_path: Path, monkeypatch, capsys) -> None:
    """A disk that is full: every write that reaches the disk and every fsync fails with ENOSPC."""
    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    monkeypatch.setattr(os, "fsync", full)
    assert main(["run", "--vault", str(v), "--quiet", "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert os.strerror(errno.ENOSPC) in err and "disk is full" in err and "Traceback" not in err
    assert not list((v / "state").rglob("*.state.json"))  # nothing committed
    monkeypatch.undo()
    assert run(v) == 0


def test_full_disk_while_writing_a_state_leaves_no_temporary_file(tmp_path: Path, monkeypatch, capsys) -> None:
    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)
    real_open = open

    def open_on_full_disk(file, mode="r", *a, **kw):
        f = real_open(file, mode, *a, **kw)
        if str(file).endswith(".state.json.tmp"):
            f.close()  # created, and then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return f

    monkeypatch.setattr("builtins.open", open_on_full_disk)
    assert main(["run", "--vault", str(v), "--quiet", "--jobs", "1"]) == 1
    assert "disk is full" in capsys.readouterr().err
    assert not list(v.rglob("*.tmp"))
    monkeypatch.undo()
    assert run(v) == 0


def test_unwritable_stats_file_is_a_message(tmp_path: Path, vault: Path, capsys) -> None:
    assert main(["run", "--vault", str(vault), "--quiet", "--stats", str(tmp_path / "no" / "such" / "s.json")]) == 2
    assert "--stats" in capsys.readouterr().err


# ---- indicators status with a damaged state ------------------------------------------------------------


def test_status_shows_every_instrument_and_the_fix_for_a_damaged_state(vault: Path, capsys) -> None:
    damaged = vault / ETH_STATE
    damaged.write_text('{"format": 1, "cursor": ')
    capsys.readouterr()
    assert main(["status", "--vault", str(vault), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    states = list((vault / "state").glob("*/*/*/*.state.json"))  # every indicator and the quality log, two instruments
    assert len(states) >= 14 and len(rows) == len(states)  # and ETH's books: buckets and their quality log
    bad = [r for r in rows if "error" in r]
    assert [(r["instrument"], r["indicator"]) for r in bad] == [("okx/perps/ETH-USDT-SWAP", "volume")]
    assert str(damaged) in bad[0]["error"]
    assert bad[0]["reset"] == f"indicators reset --vault {vault} --indicator volume --inst ETH-USDT-SWAP"
    assert all(r["trades"] > 0 for r in rows
               if "error" not in r and r["kind"] == "trades" and r["indicator"] != "confluence")  # reads records
    assert all(r["pushes"] > 0 for r in rows if r["kind"] == "books")

    assert main(["status", "--vault", str(vault)]) == 1
    out = capsys.readouterr().out
    assert out.count("okx/perps/BTC-USDT-SWAP") == len([p for p in states if p.name.startswith("BTC-USDT-SWAP.")])
    assert bad[0]["reset"] in out

    # the command it prints is the fix
    assert main(shlex.split(bad[0]["reset"])[1:]) == 0
    assert run(vault) == 0
    assert main(["status", "--vault", str(vault)]) == 0


# ---- config numbers compare by value -----------------------------------------------------------------------


def _config(tmp_path: Path, whale: str) -> Path:
    return write_config(tmp_path / f"c{abs(hash(whale))}.toml", f"[plugins.volume]\nwhale_threshold_usd = {whale}\n")


@pytest.mark.parametrize("first,second", [('"100000"', "1e5"), ("1e5", '"100000"'), ("100000", "1e5"),
                                          ('"100000"', "100000.0"), ('"100000.00"', '"1E+5"'), ("0.5e6", '"500000"')])
def test_a_number_spelled_differently_is_the_same_setting(tmp_path: Path, capsys, first: str, second: str) -> None:
    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)
    assert run(v, _config(tmp_path, first)) == 0
    before = outputs(v)
    assert run(v, _config(tmp_path, second)) == 0, capsys.readouterr().err
    assert outputs(v) == before


def test_a_different_number_is_still_a_change(tmp_path: Path, capsys) -> None:
    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)
    assert run(v, _config(tmp_path, "1e5")) == 0
    assert run(v, _config(tmp_path, "100000.5")) == 1  # that indicator needs attention; the others go on
    assert "whale_threshold_usd" in capsys.readouterr().err


def _old_fingerprint(params: dict, inst: dict, fill: bool) -> str:
    """How the previous version computed a fingerprint: the parameters as pydantic dumped them, spelled as given."""
    doc = {"params": params, "fill_empty_bars": fill, "instrument": inst}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@pytest.mark.parametrize("spelling", [None, "1e5", '"100000.0"'])
def test_states_written_by_the_previous_version_stay_valid(tmp_path: Path, capsys, spelling: str | None) -> None:
    """An upgrade never asks for a reset: states fingerprinted the old way (defaults, or another spelling) are read."""
    from indicator_core_plugins.volume.analyzer import VolumeParams

    v = tmp_path / "v"
    materialize(v, 0.3, at_line_end=True)
    cfg = None if spelling is None else _config(tmp_path, spelling)
    assert run(v, cfg) == 0
    table = {} if spelling is None else {"whale_threshold_usd": float(spelling.strip('"'))}
    old_params = VolumeParams.model_validate(table).model_dump(mode="json")
    if spelling is None:
        assert old_params["tier_t4_above"] == "2.0"  # the old spelling of the default, not the canonical "2"
    inst = {"kind": "linear", "ct_val": "0.1", "ct_val_ccy": "ETH"}
    path = v / ETH_STATE
    state = json.loads(path.read_text())
    assert state["fingerprint"] != _old_fingerprint(old_params, inst, True)  # the new spelling hashes otherwise
    state.update(params=old_params, fingerprint=_old_fingerprint(old_params, inst, True))
    path.write_text(json.dumps(state))
    before = outputs(v)
    materialize(v, 0.6, at_line_end=True)
    assert run(v, cfg) == 0, capsys.readouterr().err
    assert len(outputs(v)["volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl"]) > len(before["volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl"])
    # but an old state whose settings really differ is refused as before
    other = VolumeParams.model_validate({"whale_threshold_usd": "5"}).model_dump(mode="json")
    state = json.loads(path.read_text())
    state.update(params=other, fingerprint=_old_fingerprint(other, inst, True))
    path.write_text(json.dumps(state))
    assert run(v, cfg) == 1  # refused for that indicator: it needs attention


# ---- the follower's console --------------------------------------------------------------------------------


def _fake_follow(passes: int):
    def follow(vault, cfg, only, poll, grace, on_pass=None, **kw):
        for k in range(passes):
            s = InstrumentSummary(InstrumentKey("okx", "perps", "ETH-USDT-SWAP"))
            s.counters.update(lines=10, trades=10, bars=1 if k % 60 == 0 else 0)
            if on_pass is not None:
                on_pass(RunSummary([s]))
        raise KeyboardInterrupt

    return follow


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_follower_console_is_one_status_line_on_a_terminal(vault: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("indicator_core.runtime.follow.follow", _fake_follow(120))
    term = _Terminal()
    monkeypatch.setattr(sys, "stdout", term)
    assert main(["run", "--vault", str(vault), "--follow"]) == 0
    text = term.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, rewritten in place, ended at the stop
    assert text.count("\r") == 120
    assert "1200 trades" in text.rsplit("\r", 1)[1]


def test_follower_console_into_a_file_is_a_line_a_minute_not_a_line_a_pass(vault: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("indicator_core.runtime.follow.follow", _fake_follow(120))
    now = iter(range(0, 10_000, 1))  # a pass a second
    monkeypatch.setattr("indicator_core.console._monotonic", lambda: next(now))
    assert main(["run", "--vault", str(vault), "--follow"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # at 0 s and 60 s, and the totals at the stop
    assert "1200 trades" in lines[-1] and "\r" not in "".join(lines)


def test_quiet_follower_prints_nothing(vault: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("indicator_core.runtime.follow.follow", _fake_follow(5))
    assert main(["run", "--vault", str(vault), "--follow", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
