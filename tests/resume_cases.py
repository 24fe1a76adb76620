"""The resume invariant (SPEC section 8) as a reusable check.

A *case* grows the input of a vault in steps (cut points anywhere, mid-line
included), runs the command line after each step with some batch size, maybe
twice, maybe killing a run with SIGKILL at a random instant, and finally runs
over the whole input.  The outputs must be byte-identical to one clean run.
"""

from __future__ import annotations

import random
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from indicator_core.lock import is_held
from tests.vaults import ETH_PERP, book_dir, inst_dir, outputs, run, run_subprocess, trade_line, write_config

CONFIG = """
[run]
batch_bytes = {batch}
commit_seconds = {commit}

[plugins.volume]
median_min_bars = 3
whale_threshold_usd = "20000"

[plugins.candles]
timeframes = ["1m", "5m", "1h"]

[plugins.vwap]
windows = [3, 60]

[plugins.wicks]
timeframe = "5m"
min_wick_pct = "0.01"

[plugins.whales]
threshold = "20000"

[plugins.poor_levels]
min_periods = 1
[plugins.liquidations]
threshold = "50000"
[plugins.footprint]
enabled = true
row = "auto"
[plugins.confluence]                 # reads volume_1m and wicks_5m (it follows the wicks timeframe)
tiers = ["T2", "T3", "T4"]
min_score = 2
"""


def _eth_dirty() -> list[tuple[str, bytes]]:
    """The real ETH trades crossing midnight, with duplicates, a gap, late and bad lines added."""
    day1 = (ETH_PERP / "trades_2024-08-08.jsonl").read_bytes().splitlines(keepends=True)
    day2 = (ETH_PERP / "trades_2024-08-09.jsonl").read_bytes().splitlines(keepends=True)
    lines = list(day1)
    lines.insert(600, lines[100])  # a re-exported trade (duplicate)
    lines.insert(601, lines[101])
    del lines[3000:3004]  # a gap of four trades
    late = lines.pop(5000)
    lines.insert(9000, late)  # a trade arriving minutes after its bar closed
    lines.insert(7000, b'{"instId":"ETH-USDT-SWAP","tradeId":"1",\n')  # invalid JSON
    lines.insert(7001, b'{"instId":"ETH-USDT-SWAP","tradeId":"4308075000","px":"-1","sz":"1","side":"buy","ts":"1723161400000"}\n')
    lines.insert(7002, b"\n")
    lines[2000], lines[2003] = lines[2003], lines[2000]  # ids out of order within a minute: not a gap
    lines[6000], lines[6001] = lines[6001], lines[6000]
    lines.insert(4000, lines[3990].replace(b'"ts":"1723161', b'"ts":"1723161000'))  # microseconds: rejected
    lines.insert(4500, lines[4490].replace(b'"ts":"17231', b'"ts":"17232'))  # a day ahead: rejected
    for k in range(40):  # more a day ahead, here and there: the file's first ten listed, the rest in one line
        lines.insert(5200 + 61 * k, lines[5100 + k].replace(b'"ts":"17231', b'"ts":"17232'))
    body1 = b"".join(lines).rstrip(b"\n")  # day 1 ends without a line end: complete once day 2 exists
    return [("trades_2024-08-08.jsonl", body1), ("trades_2024-08-09.jsonl", b"".join(day2))]


def _synthetic() -> list[tuple[str, bytes]]:
    """Sparse BTC trades over ~4 hours across midnight: empty minutes, whales, sessions."""
    rng = random.Random(7)
    ts = 1723150800000  # 2024-08-08 21:00 UTC; the trades run past midnight
    tid = 900_000_000
    px = 60000.0
    days: dict[str, list[bytes]] = {}
    for _ in range(2500):
        ts += int(rng.expovariate(1 / 6000))
        if rng.random() < 0.01:
            ts += rng.randint(60_000, 400_000)  # quiet minutes
        tid += 1
        px = round(px * (1 + rng.gauss(0, 0.0008)), 1)
        sz = round(rng.paretovariate(1.1) * 0.8, 2)
        side = "buy" if rng.random() < 0.5 else "sell"
        day = time.strftime("%Y-%m-%d", time.gmtime(ts // 1000))
        days.setdefault(day, []).append(trade_line("BTC-USDT-SWAP", tid, f"{px:.1f}", f"{sz:.2f}", side, ts))
    return [(f"trades_{d}.jsonl", b"".join(v)) for d, v in sorted(days.items())]


def _books() -> list[tuple[str, bytes]]:
    """Generated ETH books across midnight: gaps, resets, heartbeats, checksums, with bad and foreign lines added."""
    from bench.generate_books import book_lines

    days: dict[str, list[bytes]] = {}
    start = 1723161360000  # 2024-08-08 23:56 UTC, beside the real ETH trades
    for ts, line in book_lines("ETH-USDT-SWAP", start, minutes=8, interval_ms=500, levels=60, seed=5, gap_every=301,
                               reset_every=101, heartbeat_every=20, mid=2600.0):
        days.setdefault(time.strftime("%Y-%m-%d", time.gmtime(ts // 1000)), []).append(line)
    day1 = days["2024-08-08"]
    day1.insert(50, b'{"arg":{"channel":"books","instId":"ETH-USDT-SWAP"},"action":"update","data":[{"bids":[["1","-2","0","1"]],"asks":[],"ts":"1723161400000"}]}\n')
    day1.insert(80, b'{"arg":{"channel":"books5","instId":"ETH-USDT-SWAP"},"data":[]}\n')
    day1.insert(120, b'{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[]}\n')
    body1 = b"".join(day1).rstrip(b"\n")  # complete once day 2 exists
    return [("books_2024-08-08.jsonl", body1), ("books_2024-08-09.jsonl", b"".join(days["2024-08-09"]))]


def _derivs() -> list[tuple[str, bytes]]:
    """Generated ETH derivatives across midnight (beside the real ETH trades, which price them): late,
    repeated, foreign and bad pushes, a funding interval change."""
    from bench.generate_derivs import okx_window

    days: dict[str, list[bytes]] = {}
    for ts, line in okx_window("ETH-USDT-SWAP", 1723161300000, 600):  # 2024-08-08 23:55 to 00:05
        days.setdefault(time.strftime("%Y-%m-%d", time.gmtime(ts // 1000)), []).append(line + b"\n")
    body1 = b"".join(days["2024-08-08"]).rstrip(b"\n")  # complete once day 2 exists
    return [("derivs_2024-08-08.jsonl", body1), ("derivs_2024-08-09.jsonl", b"".join(days["2024-08-09"]))]


STREAMS: dict[str, list[tuple[str, bytes]]] = {}


def streams() -> dict[str, list[tuple[str, bytes]]]:
    if not STREAMS:
        STREAMS["ETH-USDT-SWAP"] = _eth_dirty()
        STREAMS["BTC-USDT-SWAP"] = _synthetic()
        STREAMS["books:ETH-USDT-SWAP"] = _books()
        STREAMS["derivs:ETH-USDT-SWAP"] = _derivs()
    return STREAMS


def materialize(vault: Path, fraction: float, at_line_end: bool = False) -> None:
    """Write the first ``fraction`` of every instrument's byte stream into its files.

    The cut falls anywhere, mid-line included, or with ``at_line_end`` just after a line end.  A file
    already longer than its part is left as it is: files only grow (a shorter one is a changed file).
    """
    for inst, files in streams().items():
        if inst.startswith("books:"):
            folder = book_dir(vault, inst[6:])
        elif inst.startswith("derivs:"):
            folder = vault / "raw" / "derivs" / "okx" / "perps" / inst[7:]
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = inst_dir(vault, inst)
        total = sum(len(b) for _, b in files)
        left = int(total * fraction)
        for name, body in files:
            if left <= 0:
                break
            if at_line_end and left < len(body):
                end = body.find(b"\n", left)
                left = len(body) if end < 0 else end + 1
            part = body[:left]
            path = folder / name
            if not path.exists() or path.stat().st_size < len(part):  # files only grow, as an exporter's do
                path.write_bytes(part)
            left -= len(body)


def config(tmp: Path, batch: int, commit: float = 10.0) -> Path:
    return write_config(tmp / f"cfg-{batch}-{commit}.toml", CONFIG.format(batch=batch, commit=commit))


_REFERENCE: dict[str, bytes] = {}


def reference() -> dict[str, bytes]:
    """Outputs of one clean uninterrupted run over all of the input."""
    if not _REFERENCE:
        tmp = Path(tempfile.mkdtemp(prefix="indicator-reference-"))
        vault = tmp / "reference"
        materialize(vault, 1.0)
        assert run(vault, config(tmp, 1 << 20)) == 0
        _REFERENCE.update(outputs(vault))
        assert len(_REFERENCE) >= 10 and all(_REFERENCE.values())
    return _REFERENCE


@dataclass
class Case:
    cuts: list[float]
    batches: list[int]
    repeat: list[bool]
    kills: list[float] = field(default_factory=list)  # fractions of a whole pass, one killed run each
    killed: int = 0  # how many of those runs the kill really interrupted
    at_line_end: list[bool] = field(default_factory=lambda: [False])  # per cut: snap it to a line end


_RUN_SECONDS: list[float] = []


def _wait_until_working(vault: Path, proc, limit: float = 60.0) -> None:
    """Return once one of the run's instrument locks is held: start-up is over, the pass has begun."""
    locks = vault / "state" / ".locks"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if any(is_held(p) for p in locks.glob("*/*/*.lock")):
            return
        time.sleep(0.002)


def processing_seconds(tmp: Path) -> float:
    """How long the pass of one whole run takes here (start-up excluded), so kills land inside it."""
    if not _RUN_SECONDS:
        times = []
        for k in range(2):  # the quicker of two: one timed at a busy moment would send kills after the run's end
            vault = tmp / f"timing{k}"
            materialize(vault, 1.0)
            proc = run_subprocess(vault, config(tmp, 2048, 0.02))
            _wait_until_working(vault, proc)
            t0 = time.perf_counter()
            proc.communicate()
            times.append(time.perf_counter() - t0)
        _RUN_SECONDS.append(min(times))
    return _RUN_SECONDS[0]


def check(tmp: Path, case: Case) -> str | None:
    """Run ``case`` in a fresh vault under ``tmp``; ``None`` when the invariant held, else why not."""
    expected = reference()
    vault = tmp / "vault"
    for k, cut in enumerate(case.cuts):
        materialize(vault, cut, case.at_line_end[k % len(case.at_line_end)])
        cfg = config(tmp, case.batches[k % len(case.batches)])
        for _ in range(2 if case.repeat[k % len(case.repeat)] else 1):
            status = run(vault, cfg)
            if status != 0:
                return f"run after cut {cut} exited {status}"
    materialize(vault, 1.0)
    for fraction in case.kills:
        duration = processing_seconds(tmp)
        proc = run_subprocess(vault, config(tmp, 2048, 0.02))
        _wait_until_working(vault, proc)
        time.sleep(fraction * duration)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        case.killed += proc.returncode == -signal.SIGKILL
    if run(vault, config(tmp, case.batches[-1])) != 0:
        return "final run failed"
    got = outputs(vault)
    if got == expected:
        return None
    for name in sorted(set(got) | set(expected)):
        if got.get(name) != expected.get(name):
            a, b = got.get(name, b""), expected.get(name, b"")
            return f"{name} differs: {len(a)} bytes vs {len(b)} expected; first difference at byte " + str(
                next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            )
    return "outputs differ"
