"""The input-kind seam: a plugin registers a kind of input of its own and the runtime drives it like trades.

The toy kind below lives in a package installed from this file (nothing in
``indicator_core`` names it): ``raw/ticks/{exchange}/{market}/{INST}/ticks_{date}.txt``
holds ``ts_ms,value`` lines; its stream sums each minute's values and hands
the closed minute to the indicators that consume ``ticks``.  It is run
through the real command line, cut into several runs, killed mid-pass, and
listed by ``status`` and ``reset`` like the built-in kinds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_host import _install
from tests.vaults import REPO, outputs, write_config

TOY = r'''
"""A toy input kind: per-minute sums of `ts_ms,value` lines."""

import os
import signal
from dataclasses import dataclass, replace

from indicator_core import Indicator, StreamKind, hookimpl

MINUTE = 60_000


@dataclass
class Parsed:
    """A chunk's lines: (ts, value) rows and the rejects, numbered in their file."""

    rows: list
    rejects: list
    lines: int


@dataclass
class Reject:
    line: int
    reason: str
    text: str


def parse(chunk):
    rows, rejects = [], []
    text = bytes(chunk.buf).decode()
    lines = text.split("\n")[:-1]
    for k, line in enumerate(lines):
        try:
            ts, value = line.split(",")
            rows.append((int(ts), int(value)))
        except ValueError:
            rejects.append(Reject(chunk.first_line + k, "not ts,value", line))
    return Parsed(rows, rejects, len(lines))


@dataclass
class TickMinute:
    minute: int
    total: int
    count: int


class TickStream:
    def __init__(self):
        self.minute = None
        self.total = 0
        self.count = 0
        self.counters = {"lines": 0, "ticks": 0, "rejects": 0, "minutes": 0}

    def process(self, parsed, file_label, sink):
        self.counters["lines"] += parsed.lines
        for r in parsed.rejects:
            self.counters["rejects"] += 1
            sink.deliver("on_quality", {"event": "reject", "file": file_label, "line": r.line, "reason": r.reason,
                                        "text": r.text})
        for ts, value in parsed.rows:
            m = ts // MINUTE
            if self.minute is not None and m > self.minute:
                self._close(sink)
            if self.minute is None or m > self.minute:
                self.minute = m
            self.total += value
            self.count += 1
            self.counters["ticks"] += 1

    def _close(self, sink):
        self.counters["minutes"] += 1
        sink.deliver("on_tick_minute", TickMinute(self.minute, self.total, self.count), minute=self.minute)
        self.total = self.count = 0

    def close_by_clock(self, now_ms, grace_ms, sink):
        pass

    def to_state(self):
        return {"minute": self.minute, "total": self.total, "count": self.count, "counters": dict(self.counters)}

    def set_state(self, data):
        self.minute, self.total, self.count = data["minute"], data["total"], data["count"]
        self.counters = dict(data["counters"])


class TickQuality(Indicator):
    name = "quality"
    version = "1"
    consumes = "ticks"

    def outputs(self):
        return ["ticks_rejects"]

    def on_quality(self, event, emit):
        emit("ticks_rejects", {k: v for k, v in event.items() if k != "event"})


class Ticks(StreamKind):
    name = "ticks"
    counters = ("lines", "ticks", "rejects", "minutes")
    parse_in_threads = False
    label_suffix = " ticks"
    status_title = "ticks"
    state_suffix = ".ticks"
    status_columns = (("last minute", "last_bar_utc", "<21"), ("ticks", "ticks", ">10"), ("rejects", "rejects", ">7"))

    def root(self, cfg):
        return "raw/ticks"

    def patterns(self, cfg):
        return ["ticks_{date}.txt"]

    def new_stream(self, inst, cfg):
        return TickStream()

    def parser(self, cfg, inst_id, tolerance_minutes, now_ms):
        return parse

    def quality_log(self, inst):
        return TickQuality(inst, TickQuality.Params())

    def summary_line(self, c):
        return f"{c['ticks']} ticks ({c['lines']} lines), {c['minutes']} minutes closed, {c['rejects']} rejects"


class TickSums(Indicator):
    """Each closed minute's sum and count; dies on purpose after TOY_DIE_AFTER minutes (a kill mid-pass)."""

    name = "tick_sums"
    version = "1"
    consumes = "ticks"

    def __init__(self, instrument, params):
        super().__init__(instrument, params)
        self.running = 0
        self.seen = 0

    def outputs(self):
        return ["tick_sums_1m"]

    def on_tick_minute(self, m, emit):
        self.running += m.total
        self.seen += 1
        die = int(os.environ.get("TOY_DIE_AFTER", "0"))
        if die and self.seen >= die:
            os.kill(os.getpid(), signal.SIGKILL)
        emit("tick_sums_1m", {"minute": m.minute, "total": m.total, "count": m.count, "running": self.running})

    def get_state(self):
        return {"running": self.running}

    def set_state(self, state):
        self.running = state["running"]


@hookimpl
def register_input_kinds(register):
    register(Ticks())


@hookimpl
def register_indicators(register):
    register(TickSums)
'''

INST = "BTC-USDT-SWAP"
T0 = 1732320000000  # 2024-11-23T00:00:00Z
DAY = "2024-11-23"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return _install(tmp_path_factory.mktemp("toy"), "toy-ticks", "toy_ticks", TOY, "toy_ticks")


def _env(site: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), **extra}


def _lines(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    out, ts = [], T0
    for k in range(n):
        ts += rng.randint(1, 9000)
        out.append(b"garbage\n" if k % 97 == 13 else f"{ts},{rng.randint(-50, 100)}\n".encode())
    return out


def _vault(root: Path, lines: list[bytes]) -> Path:
    folder = root / "raw" / "ticks" / "okx" / "perps" / INST
    folder.mkdir(parents=True)
    (folder / f"ticks_{DAY}.txt").write_bytes(b"".join(lines))
    return root


def _cmd(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indicator_core", *args], env=_env(site, **env), capture_output=True,
                          text=True, timeout=120)


def _expected(lines: list[bytes]) -> list[dict]:
    """An independent reading: every closed minute's sum, count and running sum."""
    sums: dict[int, list[int]] = {}
    for line in lines:
        try:
            ts, value = map(int, line.decode().strip().split(","))
        except ValueError:
            continue
        sums.setdefault(ts // 60000, [0, 0])
        sums[ts // 60000][0] += value
        sums[ts // 60000][1] += 1
    out, running = [], 0
    for m in sorted(sums)[:-1]:  # the last minute is still open
        running += sums[m][0]
        out.append({"minute": m, "total": sums[m][0], "count": sums[m][1], "running": running})
    return out


def test_a_plugin_kind_runs_end_to_end_and_its_indicator_matches_an_independent_reading(tmp_path: Path, site) -> None:
    lines = _lines(3000)
    vault = _vault(tmp_path / "v", lines)
    done = _cmd(site, "run", "--vault", str(vault), "--jobs", "1")
    assert done.returncode == 0, done.stderr
    bad = sum(1 for line in lines if line == b"garbage\n")
    assert f"okx/perps/{INST} ticks: {3000 - bad} ticks (3000 lines)" in done.stdout
    got = [json.loads(x) for x in (vault / f"derived/tick_sums/okx/perps/{INST}/tick_sums_1m.jsonl").read_text().splitlines()]
    assert got == _expected(lines)
    rejects = (vault / f"derived/quality/okx/perps/{INST}/ticks_rejects.jsonl").read_text().splitlines()
    assert len(rejects) == bad and json.loads(rejects[0])["line"] == 14
    assert (vault / f"state/quality/okx/perps/{INST}.ticks.state.json").is_file()

    listed = _cmd(site, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    status = _cmd(site, "status", "--vault", str(vault), "--json")
    assert status.returncode == 0, status.stderr
    rows = {(r["indicator"], r["kind"]): r for r in json.loads(status.stdout)}
    assert rows["tick_sums", "ticks"]["ticks"] == 3000 - bad and rows["quality", "ticks"]["rejects"] == bad
    table = _cmd(site, "status", "--vault", str(vault))
    assert "ticks" in table.stdout.splitlines()[0] and "tick_sums" in table.stdout

    reset = _cmd(site, "reset", "--vault", str(vault), "--indicator", "quality", "--inst", INST)
    assert reset.returncode == 0, reset.stderr
    assert not (vault / f"state/quality/okx/perps/{INST}.ticks.state.json").exists()
    assert _cmd(site, "run", "--vault", str(vault), "--jobs", "1").returncode == 0
    assert len((vault / f"derived/quality/okx/perps/{INST}/ticks_rejects.jsonl").read_text().splitlines()) == bad


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_plugin_kind_cut_into_runs_equals_one_run(tmp_path: Path, site, jobs: str) -> None:
    lines = _lines(4000, seed=11)
    whole = _vault(tmp_path / "whole", lines)
    assert _cmd(site, "run", "--vault", str(whole), "--jobs", jobs).returncode == 0
    cut = _vault(tmp_path / "cut", [])
    path = cut / "raw" / "ticks" / "okx" / "perps" / INST / f"ticks_{DAY}.txt"
    data = b"".join(lines)
    for end in (1000, 1001, 25_000, 25_000, 60_017, len(data)):  # inside a line too: the part line waits
        path.write_bytes(data[:end])
        done = _cmd(site, "run", "--vault", str(cut), "--jobs", jobs)
        assert done.returncode == 0, done.stderr
    assert outputs(cut) == outputs(whole)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_plugin_kind_killed_mid_pass_loses_nothing_and_writes_nothing_twice(tmp_path: Path, site) -> None:
    lines = _lines(6000, seed=5)
    whole = _vault(tmp_path / "whole", lines)
    assert _cmd(site, "run", "--vault", str(whole), "--jobs", "1").returncode == 0
    killed = _vault(tmp_path / "killed", lines)
    cfg = write_config(tmp_path / "c.toml", "[run]\ncommit_seconds = 0.0001\nbatch_bytes = 4096\n")
    for die in ("40", "90"):
        done = _cmd(site, "run", "--vault", str(killed), "--config", str(cfg), "--jobs", "1", TOY_DIE_AFTER=die)
        assert done.returncode == -signal.SIGKILL
    # the killed runs committed part of the way: some output, not all of it
    partial = outputs(killed)[f"tick_sums/okx/perps/{INST}/tick_sums_1m.jsonl"]
    assert 0 < len(partial) < len(outputs(whole)[f"tick_sums/okx/perps/{INST}/tick_sums_1m.jsonl"])
    assert _cmd(site, "run", "--vault", str(killed), "--config", str(cfg), "--jobs", "1").returncode == 0
    assert outputs(killed) == outputs(whole)
