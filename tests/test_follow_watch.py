"""Follow mode wakes on file-system events under raw/, polls when it cannot, and delivers signals at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_notify import BTC, receiver, webhook_config, whale_trades  # noqa: F401 (fixture)
from tests.test_whales_poor_levels import vault_with
from tests.vaults import ETH_PERP, REPO, inst_dir, read_jsonl, trade_line, write_config

pytest.importorskip("watchdog")

WHALES = "derived/whales/okx/perps/" + BTC + "/whales.jsonl"
NEVER = str(10 * 365 * 86400)  # grace: no bar closes by the clock


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for(cond, seconds: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    return cond()


def _follow(vault: Path, cfg: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config",
                             str(cfg), "--follow", "--grace", NEVER, "--quiet", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen) -> str:
    if sys.platform == "win32":
        proc.terminate()
    else:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="stops the follower with SIGTERM")
def test_an_appended_line_is_read_without_waiting_for_the_poll_interval(tmp_path: Path) -> None:
    vault = vault_with(tmp_path, whale_trades(2))
    cfg = write_config(tmp_path / "c.toml", "")
    proc = _follow(vault, cfg, "--poll", "60")
    try:
        assert _wait_for(lambda: _lines(vault / WHALES) == 2, 60, proc), "the first pass wrote no whales"
        day = next((vault / "raw/trades/okx/perps" / BTC).iterdir())
        ts = whale_trades(3)[2][0]
        with open(day, "ab") as f:  # a third whale trade, appended while it follows
            f.write(trade_line(BTC, 1002, "60000", "300", "buy", ts))
        # polling alone would read it 60 s from now; an event wakes the follower within a few ms
        seen = _wait_for(lambda: _lines(vault / WHALES) == 3, 15, proc)
    finally:
        err = _stop(proc)
    assert seen, err
    assert proc.returncode == 0, err
    assert "not available" not in err and "without a file-system notification" not in err, err


@pytest.mark.skipif(sys.platform == "win32", reason="stops the follower with SIGTERM")
def test_no_watch_waits_for_the_poll_interval(tmp_path: Path) -> None:
    """The counterpart of the test above: without events nothing wakes the follower before --poll."""
    vault = vault_with(tmp_path, whale_trades(2))
    cfg = write_config(tmp_path / "c.toml", "")
    proc = _follow(vault, cfg, "--poll", "60", "--no-watch")
    try:
        assert _wait_for(lambda: _lines(vault / WHALES) == 2, 60, proc)
        day = next((vault / "raw/trades/okx/perps" / BTC).iterdir())
        with open(day, "ab") as f:
            f.write(trade_line(BTC, 1002, "60000", "300", "buy", whale_trades(3)[2][0]))
        seen = _wait_for(lambda: _lines(vault / WHALES) == 3, 3, proc)
    finally:
        err = _stop(proc)
    assert not seen and proc.returncode == 0, err


def _follow_in_process(vault: Path, poll: float, append: bytes, day: Path, passes_after: int = 3) -> list[int]:
    """``follow`` until ``passes_after`` passes after the one that saw ``append``; the whales per pass."""
    from indicator_core.config import load_config
    from indicator_core.runtime.follow import follow

    counts: list[int] = []

    def on_pass(summary) -> None:
        counts.append(_lines(vault / WHALES))
        if len(counts) == 1:
            with open(day, "ab") as f:
                f.write(append)
        if len(counts) > 1 and counts[-1] == 3 and counts.count(3) > passes_after:
            raise KeyboardInterrupt
        if len(counts) > 200:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow(vault, load_config(None), poll_seconds=poll, grace_seconds=float(NEVER), on_pass=on_pass)
    return counts


def test_a_watcher_that_cannot_start_falls_back_to_polling_and_says_so_once(tmp_path: Path, monkeypatch,
                                                                            capsys) -> None:
    from indicator_core import watch

    def refuse(vault, event):
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watch, "_start_observer", refuse)
    vault = vault_with(tmp_path, whale_trades(2))
    day = next((vault / "raw/trades/okx/perps" / BTC).iterdir())
    counts = _follow_in_process(vault, 0.05, trade_line(BTC, 1002, "60000", "300", "buy", whale_trades(3)[2][0]), day)
    assert counts[0] == 2 and counts[-1] == 3  # polling read the appended whale
    err = capsys.readouterr().err
    assert err.count("file-system notifications are not available") == 1, err
    assert "inotify watch limit reached" in err and "polling every 0.05 s" in err, err


def test_without_the_watchdog_library_it_polls(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "watchdog.observers", None)  # import fails as if it were not installed
    vault = vault_with(tmp_path, whale_trades(2))
    day = next((vault / "raw/trades/okx/perps" / BTC).iterdir())
    counts = _follow_in_process(vault, 0.05, trade_line(BTC, 1002, "60000", "300", "buy", whale_trades(3)[2][0]), day)
    assert counts[-1] == 3
    assert capsys.readouterr().err.count("file-system notifications are not available") == 1


def test_follower_reads_its_own_writes_without_waking_itself(tmp_path: Path) -> None:
    """Its writes under derived/ and state/ (and its reads of raw/) are no event: an idle follower waits --poll."""
    from indicator_core.watch import Wakeup

    vault = vault_with(tmp_path, whale_trades(2))
    wake = Wakeup(vault, 0.5)
    try:
        assert wake.watching
        (vault / "state").mkdir()
        (vault / "state" / "x.json").write_bytes(b"{}")
        day = next((vault / "raw/trades/okx/perps" / BTC).iterdir())
        day.read_bytes()  # a read is no change
        wake.wait()
        wake.wait()
        assert not wake.woken
        with open(day, "ab") as f:
            f.write(b"\n")
        wake.wait()
        assert wake.woken
    finally:
        wake.close()


@pytest.mark.skipif(sys.platform == "win32", reason="stops the follower with SIGTERM")
def test_confluence_signals_are_delivered_while_following(tmp_path: Path, receiver) -> None:  # noqa: F811
    """Signals follow their producers' pass: committed and POSTed without waiting for commit_seconds."""
    srv = receiver()
    text = "[plugins.volume]\nmedian_window = 3\nmedian_min_bars = 1\n[plugins.wicks]\ntimeframe = \"1m\"\n" \
           "min_wick_pct = \"0.001\"\n[plugins.confluence]\ntiers = [\"T2\", \"T3\", \"T4\"]\nmin_score = 2\n" \
           "[run]\ncommit_seconds = 3600\n"
    cfg = webhook_config(tmp_path / "c.toml", srv.url, text, streams='["confluence"]')
    inst = "ETH-USDT-SWAP"
    vault = tmp_path / "vault"
    folder = inst_dir(vault, inst)
    day1 = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes()
    half = day1.index(b"\n", len(day1) // 2) + 1
    (folder / "trades_2024-08-08.jsonl").write_bytes(day1[:half])
    signals = vault / "derived/confluence/okx/perps" / inst / "signals.jsonl"
    proc = _follow(vault, cfg, "--poll", "60")
    try:
        assert _wait_for(lambda: len(srv.ids()) > 0, 60, proc), "no signal delivered from the first half"
        first = len(srv.ids())
        with open(folder / "trades_2024-08-08.jsonl", "ab") as f:
            f.write(day1[half:])
        assert _wait_for(lambda: len(srv.ids()) > first and len(srv.ids()) == _lines(signals), 30, proc)
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    # the signal id of SPEC section 12
    assert srv.ids() == [f"{inst}|{s['timestamp_utc']}|{s['level']}" for s in read_jsonl(signals)], err


def test_lines_without_events_are_read_by_polling_and_said_once(tmp_path: Path, monkeypatch, capsys) -> None:
    """A mount whose writes bring no event (e.g. written from another machine): polling reads them."""
    from indicator_core import watch
    from indicator_core.config import load_config
    from indicator_core.runtime.follow import follow

    class Deaf:  # a watcher that started and never reports anything
        def stop(self) -> None:
            pass

        def join(self, timeout: float) -> None:
            pass

    monkeypatch.setattr(watch, "_start_observer", lambda vault, event: Deaf())
    vault = vault_with(tmp_path, whale_trades(2))
    day = next((vault / "raw/trades/okx/perps" / BTC).iterdir())
    whales = whale_trades(8)
    passes: list[int] = []

    def on_pass(summary) -> None:
        passes.append(_lines(vault / WHALES))
        if len(passes) <= 5:  # a whale appended before each of the next five passes
            with open(day, "ab") as f:
                f.write(trade_line(BTC, 1001 + len(passes), "60000", "300", "buy", whales[1 + len(passes)][0]))
        elif len(passes) >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow(vault, load_config(None), poll_seconds=0.05, grace_seconds=float(NEVER), on_pass=on_pass)
    assert passes[0] == 2 and passes[-1] == 7
    err = capsys.readouterr().err
    assert err.count("without a file-system notification") == 1, err
    assert "not available" not in err
