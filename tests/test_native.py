"""The compiled kernels: built where a C compiler is at hand, switched off by the environment, same outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from indicator_core import native
from tests.vaults import ETH_PERP, OKX, REPO, inst_dir, outputs


def test_the_kernel_is_built_where_a_compiler_is_at_hand() -> None:
    cc = (sysconfig.get_config_var("CC") or "").split()
    if sys.platform == "win32" or not cc or shutil.which(cc[0]) is None:
        pytest.skip("no C compiler here: the pure paths run (tested everywhere)")
    assert native.load("trades") is not None, "setup.py did not build indicator_core._native_trades"
    assert native.load("books") is not None, "setup.py did not build indicator_core._native_books"


def test_pure_paths_are_asked_for_by_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.load("trades") is None and native.load("books") is None
    assert "pure" in native.describe()
    monkeypatch.setenv(native.PURE_ENV, "0")
    assert not native.pure_requested()


def _run(vault, pure: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(native.PURE_ENV, None)
    if pure:
        env[native.PURE_ENV] = "1"
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet", "--jobs", "1"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compiled_and_pure_runs_write_the_same_bytes(tmp_path) -> None:
    """Real recorded trades (JSON lines with a bad line added, and an OKX archive CSV) through both paths."""
    if native.load("trades") is None:
        pytest.skip("the compiled kernel is not built in this install")
    trees = {}
    for pure in (False, True):
        vault = tmp_path / ("pure" if pure else "compiled")
        eth = inst_dir(vault, "ETH-USDT-SWAP")
        shutil.copytree(ETH_PERP, eth, dirs_exist_ok=True)
        day = sorted(eth.glob("*.jsonl"))[0]
        lines = day.read_bytes().splitlines(keepends=True)
        lines.insert(len(lines) // 2, b'{"instId":"ETH-USDT-SWAP","tradeId":"x"}\n')  # a reject in mid-chunk
        day.write_bytes(b"".join(lines))
        matic = inst_dir(vault, "MATIC-USDT-SWAP")
        body = (OKX / "MATIC-USDT-SWAP-trades-2023-08-21.csv").read_bytes()
        body += b"MATIC-USDT-SWAP,104136707,buy,0.5750,1.0,1692547320001\n"  # the next minute closes the first
        (matic / "MATIC-USDT-SWAP-trades-2023-08-21.csv").write_bytes(body)
        _run(vault, pure)
        trees[pure] = outputs(vault)
    assert trees[False] and trees[False] == trees[True]
    assert any("MATIC" in name for name in trees[False])
