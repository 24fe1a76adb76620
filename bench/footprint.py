"""The single pass with the footprint against the pass without it, measured in the same run (SPEC section 18).

    python bench/footprint.py [--trades 4000000] [--repeat 4]

Times, in this process and with start-up left out, one pass over the benchmark's generated day of
``--trades`` trades (``generate.py``, written once under ``bench/work/``) with the default indicators, then
the same with ``[plugins.footprint] enabled = true``, alternating, best of ``--repeat``; prints both and the
ratio (aim: at most 1.3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

BASE = "[plugins.confluence]\nenabled = false\n"
WITH = BASE + "[plugins.footprint]\nenabled = true\n"


def pass_seconds(data: Path, config: str) -> float:
    from passes import pass_seconds as one_pass  # type: ignore[import-not-found]

    return one_pass(data, "trades", config, link="instrument")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trades", type=int, default=4_000_000)
    ap.add_argument("--repeat", type=int, default=4)
    a = ap.parse_args()
    from passes import trade_day  # type: ignore[import-not-found]

    data = trade_day("footprint", a.trades)
    without, with_ = [], []
    for _ in range(a.repeat):
        without.append(pass_seconds(data, BASE))
        with_.append(pass_seconds(data, WITH))
    w0, w1 = min(without), min(with_)
    print(f"pass without the footprint ({a.trades:,} trades): {w0:.3f} s")
    print(f"pass with the footprint:                     {w1:.3f} s")
    print(f"ratio: {w1 / w0:.3f} (aim <= 1.3)")


if __name__ == "__main__":
    main()
