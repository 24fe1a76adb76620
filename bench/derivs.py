"""The derivatives pass against the trade pass, measured in the same run (SPEC section 17, issue target).

    python bench/derivs.py [--trades 2000000] [--liquidations 10000] [--repeat 7]

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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def _pass_seconds(data: Path, kind: str) -> float:
    from passes import pass_seconds  # type: ignore[import-not-found]

    return pass_seconds(data / "raw" / kind, kind)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trades", type=int, default=2_000_000)
    ap.add_argument("--liquidations", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=7)
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
