"""The signal seam: an indicator declares which of its outputs are signals (``Indicator.signals``).

A toy indicator from a package installed here (nothing in ``indicator_core`` names it) declares its
``pings`` output a signal stream ``ping`` with a direction; a notifier delivers its committed records
with the ids it declares, ``study`` scores it, and a notifier naming an undeclared stream is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_host import _install
from tests.vaults import ETH_PERP, REPO, write_config

PING = r'''
from indicator_core import Indicator, Signal, hookimpl


class Ping(Indicator):
    """A record every fifth closed minute: long when the minute closed up, short when down."""

    name = "ping"
    version = "1"
    signals = (Signal("pings", "timestamp_utc", ("timestamp_utc", "n"), direction_field="direction"),)

    def __init__(self, instrument, params):
        super().__init__(instrument, params)
        self.n = 0

    def outputs(self):
        return ["pings"]

    def on_bar(self, bar, emit):
        self.n += 1
        if self.n % 5 == 0 and bar.trade_count:
            up = bar.close >= bar.open
            emit("pings", {"timestamp_utc": bar.timestamp_utc, "n": self.n, "direction": "long" if up else "short"})

    def get_state(self):
        return {"n": self.n}

    def set_state(self, state):
        self.n = state["n"]


@hookimpl
def register_indicators(register):
    register(Ping)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("ping"), "ping-signal", "ping_signal", PING, "ping_signal")


def _cmd(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "indicator_core", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _vault(root: Path) -> Path:
    d = root / "raw" / "trades" / "okx" / "perps" / "ETH-USDT-SWAP"
    d.mkdir(parents=True)
    for f in ETH_PERP.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    return root


def test_a_plugin_signal_is_delivered_with_the_ids_it_declares_and_studied(tmp_path: Path, site) -> None:
    vault = _vault(tmp_path / "v")
    cfg = write_config(tmp_path / "c.toml", '[notify.bot]\nkind = "stdout"\nstreams = ["ping", "whales"]\n'
                                            'replay_history = true\n')
    done = _cmd(site, "run", "--vault", str(vault), "--config", str(cfg), "--jobs", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    pings = [json.loads(x) for x in (vault / "derived/ping/okx/perps/ETH-USDT-SWAP/pings.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in done.stdout.splitlines()]
    delivered = [g for g in got if g["stream"] == "ping"]
    assert pings and [g["signal_id"] for g in delivered] == [
        f"ETH-USDT-SWAP|{p['timestamp_utc']}|{p['n']}" for p in pings]
    assert any(g["stream"] == "whales" for g in got)  # the built-in declaration, beside the plugin's

    status = _cmd(site, "status", "--vault", str(vault), "--config", str(cfg), "--json")
    rows = [r for r in json.loads(status.stdout) if r.get("indicator") == "notify"]
    assert {r["stream"] for r in rows} == {"ping", "whales"} and all(r["pending"] == 0 for r in rows)

    study = _cmd(site, "study", "--vault", str(vault), "--signal", "ping", "--horizons", "1", "--json")
    assert study.returncode == 0, study.stderr
    rows = json.loads(study.stdout)["rows"] if isinstance(json.loads(study.stdout), dict) else json.loads(study.stdout)
    assert {r["signal"] for r in rows} == {"ping"} and sum(r["n"] for r in rows if r["inst_id"] != "all") >= 1


def test_a_notifier_naming_an_undeclared_stream_is_refused(tmp_path: Path, site) -> None:
    cfg = write_config(tmp_path / "c.toml", '[notify.bot]\nkind = "stdout"\nstreams = ["pong"]\n')
    done = _cmd(site, "plugins", "--config", str(cfg))
    assert done.returncode == 2
    assert "notify.bot.streams.0: Input should be 'confluence', 'liquidations', 'ping' or 'whales' (got 'pong')" in done.stderr


def test_a_declaration_that_cannot_work_is_refused_when_the_class_is_defined() -> None:
    from indicator_core import Signal

    with pytest.raises(TypeError, match=r"got the string 'trade_id': write \('trade_id',\)"):
        Signal("whales", "ts_utc", ("trade_id"))  # the comma forgotten: one string, not a tuple
    with pytest.raises(TypeError, match="at least one record field"):
        Signal("whales", "ts_utc", ())
    with pytest.raises(TypeError, match="Signal time_field must be a non-empty string"):
        Signal("whales", "", ("trade_id",))
    assert Signal("whales", "ts_utc", ["trade_id", "side"]).id_fields == ("trade_id", "side")  # a list is a tuple


def test_a_signal_is_read_where_its_indicator_writes_and_a_missing_id_field_is_named(tmp_path: Path) -> None:
    import io

    from indicator_core import Indicator, Signal
    from indicator_core.config import NotifierConfig
    from indicator_core.errors import IndicatorError
    from indicator_core.notify import Deliverer
    from indicator_core.signals import signal_streams
    from indicator_core.storage import InstrumentKey, state_path, write_state

    class Liquidations(Indicator):  # what SPEC 17's liquidations will declare, written into another folder
        name = "liq_toy"
        folder = "derivs_toy"
        signals = (Signal("liquidations", "ts_utc", ("ts_utc", "side", "n"), name="liqs"),)

    streams = signal_streams({"liq_toy": Liquidations})
    stream = streams["liqs"]
    assert (stream.indicator, stream.folder, stream.output) == ("liq_toy", "derivs_toy", "liquidations")
    key = InstrumentKey("okx", "perps", "BTC-USDT-SWAP")
    assert stream.path(tmp_path, key) == tmp_path / "derived/derivs_toy/okx/perps/BTC-USDT-SWAP/liquidations.jsonl"

    records = [{"ts_utc": "2024-08-08T10:00:00.123Z", "side": "long", "n": 0, "quote": "150000"},
               {"ts_utc": "2024-08-08T10:00:00.123Z", "side": "long", "n": 1, "quote": "150000"}]
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    stream.path(tmp_path, key).parent.mkdir(parents=True)
    stream.path(tmp_path, key).write_bytes(data + b'{"ts_utc": "2024-08-08T10:01:00Z", "side": "short"}\n')
    write_state(state_path(tmp_path, "derivs_toy", key), {"outputs": {"liquidations": len(data)}})
    out = io.StringIO()
    bot = NotifierConfig(kind="stdout", streams=["liqs"], replay_history=True)
    summary = Deliverer(tmp_path, {"bot": bot}, streams, stdout=lambda: out).drain(0)
    got = [json.loads(x) for x in out.getvalue().splitlines()]
    assert summary.delivered == 2 and [g["signal_id"] for g in got] == [
        "BTC-USDT-SWAP|2024-08-08T10:00:00.123Z|long|0", "BTC-USDT-SWAP|2024-08-08T10:00:00.123Z|long|1"]
    assert {g["stream"] for g in got} == {"liqs"}

    # the third record is committed now: it lacks "n", a field of the declared id
    write_state(state_path(tmp_path, "derivs_toy", key), {"outputs": {"liquidations": len(data) + 52}})
    with pytest.raises(IndicatorError, match=r"signal stream 'liqs': a record of liquidations.jsonl \(BTC-USDT-SWAP\) "
                                             r"has no field 'n', which the 'liq_toy' indicator declares"):
        Deliverer(tmp_path, {"bot": bot}, streams, stdout=lambda: out).drain(0)


def test_run_refuses_a_disabled_notifier_naming_an_undeclared_stream(tmp_path: Path, capsys) -> None:
    from indicator_core.cli import main

    vault = _vault(tmp_path / "v")
    cfg = write_config(tmp_path / "c.toml", '[notify.bot]\nkind = "stdout"\nenabled = false\nstreams = ["whale"]\n')
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: notify.bot.streams.0: Input should be 'confluence', 'liquidations' or 'whales' (got 'whale')" in err
    assert not (vault / "derived").exists()  # refused before anything ran
