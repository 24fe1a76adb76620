"""One pass of one input kind over a benchmark's data, timed in this process with start-up left out."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def trade_day(name: str, trades: int) -> Path:
    """The instrument folder of a generated day of ``trades`` trades under ``bench/work/{name}-{trades}/``,
    written once (``generate.py``) and kept for later runs."""
    import generate  # type: ignore[import-not-found]

    data = Path(__file__).resolve().parent / "work" / f"{name}-{trades}" / "BTC-USDT-SWAP"
    if not (data.parent / "done").exists():
        generate.write_days(data, generate.generate(trades))
        (data.parent / "done").write_text("")
    return data


def pass_seconds(source: Path, kind: str, config: str = "", link: str = "raw") -> float:
    """Seconds of one pass of ``kind`` over ``source``: a vault whose ``raw/{kind}`` (``link = "raw"``) or whose
    instrument folder ``raw/trades/okx/perps/BTC-USDT-SWAP`` (``link = "instrument"``) is a link to it,
    run with ``config`` (TOML) by a host loaded beforehand, reading inline, in a process set up as the command
    sets up its own (freed memory kept for reuse: without it, fresh pages fault in at every pass)."""
    from indicator_core.command import keep_freed_memory
    from indicator_core.config import load_config

    keep_freed_memory()
    from indicator_core.runtime.host import Host
    from indicator_core.runtime.instrument_pass import instruments, run_instrument

    with tempfile.TemporaryDirectory(prefix="bench-pass-") as tmp:
        vault = Path(tmp) / "v"
        target = vault / "raw" / kind if link == "raw" else vault / "raw" / kind / "okx" / "perps" / "BTC-USDT-SWAP"
        target.parent.mkdir(parents=True)
        target.symlink_to(source, target_is_directory=True)
        cfg = Path(tmp) / "c.toml"
        cfg.write_text(config)
        host = Host.load(load_config(cfg))
        host.threads = False
        found = [t for t in instruments(host, vault, None) if t[1].name == kind]
        t0 = time.perf_counter()
        for key, k, folder in found:
            summary = run_instrument(host, vault, key, folder, k)
            assert not summary.failures, summary.failures
        return time.perf_counter() - t0
