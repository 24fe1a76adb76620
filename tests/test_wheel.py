"""The wheel this machine builds carries its compiled kernels and, installed into a clean venv, writes the
same outputs as the source checkout (tools/wheel_check.py; needs the package index: `pytest -m network`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.vaults import REPO

pytestmark = [pytest.mark.network, pytest.mark.timeout(0)]  # building a wheel and a venv can take minutes


def test_the_built_wheel_installs_and_runs_its_kernels(tmp_path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "tools" / "wheel_check.py"), "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "compiled kernels for trades, books, derivs, json" in done.stdout
    assert "byte for byte" in done.stdout
