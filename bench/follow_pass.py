"""Time one pass of a running follower after 1% more trades were appended.

    python bench/follow_pass.py VAULT CONFIG INSTRUMENT_FOLDER TRADES SEED   (appends TRADES/100)

The vault must already be processed.  The follower is set up as
``indicators run --follow`` sets it up (plugins loaded, states read, the
indicators in memory); then trades are appended and passes are timed: an
ordinary pass, which writes its records for readers of the outputs (the
median of three, each over a new 1%), and, on one more 1%, a pass that also
commits (fsync and states, every ``commit_seconds``).  Prints: seconds of
the ordinary pass, its trades, seconds of the committing pass.
"""

import decimal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from indicator_core.config import load_config
from indicator_core.runtime.follow import Follower
from indicator_core.runtime.host import Host
from indicator_core.runtime.instrument_pass import wall_clock_ms
from indicator_core.lock import VaultLock
from indicator_core.numbers import EXACT

vault, cfg_path, folder, trades, seed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
host = Host.load(load_config(cfg_path))
decimal.setcontext(EXACT.copy())


def append(k: int) -> None:
    subprocess.run([sys.executable, str(Path(__file__).with_name("generate.py")), folder, "--seed", str(seed + k),
                    "--append", str(max(int(trades) // 100, 1))], check=True, stdout=subprocess.DEVNULL)


# The generated trades are of 2024: a grace of ten years keeps today's clock from closing their bars
# (which would make the first appended trades late), as if the follower ran when they were recorded.
GRACE_MS = 10 * 365 * 86_400_000

with VaultLock(vault):
    follower = Follower(host, vault)
    follower.step(wall_clock_ms, GRACE_MS, commit=True)  # up to date, states in memory
    plain, seen = [], 0
    for k in range(3):  # a running follower: the median of three passes, each over a new 1%
        append(k)
        t0 = time.perf_counter()
        summary = follower.step(wall_clock_ms, GRACE_MS, commit=False)
        plain.append(time.perf_counter() - t0)
        seen = summary.total("trades")
    append(3)
    t0 = time.perf_counter()
    follower.step(wall_clock_ms, GRACE_MS, commit=True)
    committing = time.perf_counter() - t0
    print(statistics.median(plain), seen, committing)
