"""The derivatives pass against the trade pass, measured in the same run (SPEC section 17, issue target).

    python bench/derivs.py [--trades 2000000] [--liquidations 10000] [--repeat 3]

Generates (once, under ``bench/work/``) a derivs day of 86,400 OKX open-interest pushes, 1,440
funding-rate pushes and ``--liquidations`` liquidations (``generate_derivs.py``), and a trade day of
``--trades`` trades (``generate.py``; OKX BTC-USDT-SWAP prints about 2M trades on an average day),
then times, in this process, one pass of each kind over its day with every default indicator
enabled: the derivs pass (``derivs`` + ``liquidations`` + its quality log) and the trade pass
(volume, cvd, vwap, candles, wicks, whales, quality).  Start-up is not in either figure.  Prints
the seconds and the ratio derivs / trades (target: under 0.1), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def _pass_seconds(data: Path, kind: str) -> float:
    from indicator_core.config import Config
    from indicator_core.runtime.host import Host
    from indicator_core.runtime.instrument_pass import instruments, run_instrument

    with tempfile.TemporaryDirectory(prefix="bench-derivs-") as tmp:
        vault = Path(tmp) / "v"
        (vault / "raw").mkdir(parents=True)
        root = data / "raw" / kind
        (vault / "raw" / kind).symlink_to(root, target_is_directory=True)
        host = Host.load(Config())
        host.threads = False
        found = [t for t in instruments(host, vault, None) if t[1].name == kind]
        t0 = time.perf_counter()
        for key, k, folder in found:
            summary = run_instrument(host, vault, key, folder, k)
            assert not summary.failures, summary.failures
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--liquidations", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import generate  # type: ignore[import-not-found]
    import generate_derivs

    work = HERE / "work" / f"derivs-{a.trades}-{a.liquidations}"
    if not (work / "done").exists():
        shutil.rmtree(work, ignore_errors=True)
        generate_derivs.write_days(work, "BTC-USDT-SWAP", days=1, liquidations=a.liquidations)
        generate.write_days(work / "raw" / "trades" / "okx" / "perps" / "BTC-USDT-SWAP", generate.generate(a.trades))
        (work / "done").write_text("")
    derivs, trades = [], []
    for _ in range(a.repeat):
        derivs.append(_pass_seconds(work, "derivs"))
        trades.append(_pass_seconds(work, "trades"))
    d, t = min(derivs), min(trades)
    print(f"derivs day (86,400 open interest, 1,440 funding, {a.liquidations:,} liquidations): {d:.3f} s")
    print(f"trade day ({a.trades:,} trades, default indicators):                       {t:.3f} s")
    print(f"ratio derivs / trades: {d / t:.3f} (target < 0.1)")


if __name__ == "__main__":
    main()
