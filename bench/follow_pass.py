"""Time one pass of a running follower after 1% more trades were appended.

    python bench/follow_pass.py VAULT CONFIG INSTRUMENT_FOLDER TRADES SEED   (appends TRADES/100)

The vault must already be processed.  The follower is set up as
``indicators run --follow`` sets it up (plugins loaded, states read by a
first pass); then the trades are appended and one pass is timed.  Prints seconds.
"""

import decimal
import subprocess
import sys
import time
from pathlib import Path

from indicator_core.config import load_config
from indicator_core.engine import Host, _pass, wall_clock_ms
from indicator_core.lock import VaultLock
from indicator_core.numbers import EXACT
from indicator_core.progress import no_progress

vault, cfg_path, folder, trades, seed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
host = Host.load(load_config(cfg_path))
decimal.setcontext(EXACT.copy())
with VaultLock(vault):
    _pass(host, vault, None, no_progress)  # the follower is up to date
    subprocess.run([sys.executable, str(Path(__file__).with_name("generate.py")), folder, "--seed", seed,
                    "--append", str(max(int(trades) // 100, 1))], check=True, stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    summary = _pass(host, vault, None, no_progress,
                    clock=wall_clock_ms, grace_ms=5000)
    print(time.perf_counter() - t0, summary.total("trades"))
