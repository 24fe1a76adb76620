"""The venue-format seam: a plugin registers a file format for an exchange folder of its own.

The toy format lives in a package installed from this file (nothing in ``indicator_core`` names it):
``raw/trades/toyex/{market}/{INST}/trades_{date}.psv`` holds ``id|ts|px|sz|B`` lines.  Its files
are read through the real command line like OKX's: every indicator, cut into runs, ``plugins`` and
``status`` listings, and a pattern ending no format reads is a clear config error.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_host import _install
from tests.vaults import REPO, outputs, trade_line, write_config

TOY = r'''
"""A toy venue: pipe-separated trades of an exchange folder `toyex`."""

from indicator_core import ColumnBuilder, Reject, VenueFormat, hookimpl, parse_decimal


def parse(chunk, inst_id, window):
    out = ColumnBuilder()
    lines = bytes(chunk.buf).split(b"\n")[:-1]
    for k, raw in enumerate(lines):
        try:
            tid, ts, px, sz, side = raw.decode().split("|")
            ts = int(ts)
            why = window.reason(ts)
            if why:
                raise ValueError(why)
            out.add(ts=ts, trade_id=int(tid), count=1, is_buy=side == "B", px=parse_decimal(px),
                    sz=parse_decimal(sz))
        except ValueError as exc:
            out.rejects.append(Reject(chunk.first_line + k, str(exc), raw.decode(errors="replace")))
    return out.build(len(lines))


@hookimpl
def register_venue_formats(register):
    register(VenueFormat("toyex-psv", "toyex", (".psv",), parse, description="pipe-separated toy trades"))
'''

CONFIG = '''
[input]
patterns = ["trades_{date}.jsonl", "trades_{date}.psv"]

[instruments."TOY-USDT"]
kind = "linear"
ct_val = "1"
ct_val_ccy = "TOY"
'''
T0 = 1732320000000  # 2024-11-23T00:00:00Z


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("toyex"), "toy-venue", "toy_venue", TOY, "toy_venue")


def _cmd(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "indicator_core", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _trades(n: int, seed: int = 2) -> list[tuple[int, int, str, str, bool]]:
    rng = random.Random(seed)
    out, ts, px = [], T0, 5000
    for k in range(n):
        ts += rng.randint(0, 3000)
        px += rng.choice((-1, 0, 1))
        out.append((1000 + k, ts, f"{px}.{rng.randint(0, 9)}", f"{rng.randint(1, 900)}", rng.random() < 0.5))
    return out


def _psv(trades) -> bytes:
    return b"".join(f"{t}|{ts}|{px}|{sz}|{'B' if buy else 'S'}\n".encode() for t, ts, px, sz, buy in trades)


def test_a_plugin_format_reads_its_exchange_folder_like_okx_lines(tmp_path: Path, site) -> None:
    trades = _trades(2500)
    cfg = write_config(tmp_path / "c.toml", CONFIG)
    toy = tmp_path / "toy"
    d = toy / "raw/trades/toyex/perps/TOY-USDT"
    d.mkdir(parents=True)
    (d / "trades_2024-11-23.psv").write_bytes(_psv(trades))
    done = _cmd(site, "run", "--vault", str(toy), "--config", str(cfg), "--jobs", "1")
    assert done.returncode == 0, done.stderr
    # the same trades as OKX lines give the same bytes in every output but the instrument's name
    okx = tmp_path / "okx"
    d2 = okx / "raw/trades/okx/perps/TOY-USDT"
    d2.mkdir(parents=True)
    (d2 / "trades_2024-11-23.jsonl").write_bytes(b"".join(
        trade_line("TOY-USDT", t, px, sz, "buy" if buy else "sell", ts) for t, ts, px, sz, buy in trades))
    assert _cmd(site, "run", "--vault", str(okx), "--config", str(cfg), "--jobs", "1").returncode == 0
    a = {k.replace("/toyex/", "/"): v for k, v in outputs(toy).items()}
    b = {k.replace("/okx/", "/"): v for k, v in outputs(okx).items()}
    assert a == b and "volume/perps/TOY-USDT/volume_1m.jsonl" in a and len(a) >= 5

    listed = _cmd(site, "plugins", "--json", "--config", str(cfg))
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["format.toyex-psv"]["exchange"] == "toyex" and rows["format.toyex-psv"]["source"] == "toy-venue 0.3.0"
    assert rows["format.okx-jsonl"]["source"] == "built-in"


def test_a_plugin_format_cut_into_runs_equals_one_run(tmp_path: Path, site) -> None:
    data = _psv(_trades(3000, seed=9))
    cfg = write_config(tmp_path / "c.toml", CONFIG + "\n[run]\nbatch_bytes = 2048\n")
    vaults = {}
    for name, ends in (("whole", [len(data)]), ("cut", [100, 101, 20_000, 20_000, len(data) - 3, len(data)])):
        v = tmp_path / name
        d = v / "raw/trades/toyex/perps/TOY-USDT"
        d.mkdir(parents=True)
        for end in ends:
            (d / "trades_2024-11-23.psv").write_bytes(data[:end])
            done = _cmd(site, "run", "--vault", str(v), "--config", str(cfg), "--jobs", "1")
            assert done.returncode == 0, done.stderr
        vaults[name] = outputs(v)
    assert vaults["cut"] == vaults["whole"]


def test_a_pattern_no_installed_format_reads_is_a_config_error(tmp_path: Path, site) -> None:
    cfg = write_config(tmp_path / "c.toml", '[input]\npatterns = ["trades_{date}.parquet"]\n')
    v = tmp_path / "v"
    (v / "raw/trades/okx/perps/BTC-USDT-SWAP").mkdir(parents=True)
    done = _cmd(site, "run", "--vault", str(v), "--config", str(cfg))
    assert done.returncode == 2
    assert "input.patterns.0: pattern 'trades_{date}.parquet' must end in one of" in done.stderr
    assert ".psv" in done.stderr and ".jsonl" in done.stderr  # the plugin's ending is among them
