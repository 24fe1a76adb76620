"""Build this machine's wheel (compiled kernels inside), install it into a clean venv, and check it.

    python tools/wheel_check.py [--keep DIR]

What .github/workflows/wheels.yml does with cibuildwheel on every system, done here for the
machine at hand: the wheel is built from a copy of the source (so the checkout stays clean) with
``INDICATOR_CORE_REQUIRE_KERNELS=1`` (a kernel that does not compile fails the build), installed
with its dependencies into a new venv that has never seen the source, and then

- ``indicators plugins`` must say the compiled kernels run for trades, books, derivs and json;
- ``indicators run`` on a copy of ``examples/vault`` must write the same bytes as the source
  checkout's pure-Python path (``INDICATOR_CORE_PURE=1``) on another copy.

Prints what it did; exits 1 on any difference.  Needs the package index for the dependencies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "setup.py", "README.md", "indicator_core", "plugins", "indicator_core_plugins")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def outputs(vault: Path) -> dict[str, bytes]:
    return {str(p.relative_to(vault)): p.read_bytes() for p in sorted((vault / "derived").rglob("*.jsonl"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", type=Path, help="build and install here, and keep it (default: a temporary folder)")
    a = ap.parse_args()
    work = a.keep or Path(tempfile.mkdtemp(prefix="wheel-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir()
        for name in SOURCES:
            path = REPO / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
            else:
                shutil.copy(path, src / name)
        wheels = work / "wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        env = {**os.environ, "INDICATOR_CORE_REQUIRE_KERNELS": "1"}
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(src)], env=env)
        (wheel,) = wheels.glob("indicator_core-*.whl")
        print(f"built {wheel.name}")
        if wheel.name.endswith("-none-any.whl"):
            print("error: a pure wheel (no compiled kernel inside)")
            return 1

        env_dir = work / "venv"
        shutil.rmtree(env_dir, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        run([str(py), "-m", "pip", "install", "--quiet", str(wheel)])
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INDICATOR_CORE_PURE")}
        away = work / "elsewhere"  # not the source: only the installed copy can be imported
        away.mkdir(exist_ok=True)
        described = run([str(py), "-m", "indicator_core", "plugins"], env=clean, cwd=away).stdout
        kernels = next((line for line in described.splitlines() if "parsers:" in line), "")
        print(f"installed: {kernels.strip()}")
        if not all(k in kernels for k in ("trades", "books", "derivs", "json")) or "compiled" not in kernels:
            print("error: the installed wheel does not run its compiled kernels")
            return 1

        installed, source = work / "vault-installed", work / "vault-source"
        for vault in (installed, source):
            shutil.rmtree(vault, ignore_errors=True)
            shutil.copytree(REPO / "examples" / "vault" / "raw", vault / "raw")
        run([str(py), "-m", "indicator_core", "run", "--vault", str(installed), "--quiet"], env=clean, cwd=away)
        run([sys.executable, "-m", "indicator_core", "run", "--vault", str(source), "--quiet"],
            env={**os.environ, "PYTHONPATH": str(REPO), "INDICATOR_CORE_PURE": "1"}, cwd=REPO)
        a_out, b_out = outputs(installed), outputs(source)
        if a_out != b_out:
            differ = sorted(k for k in set(a_out) | set(b_out) if a_out.get(k) != b_out.get(k))
            print(f"error: {len(differ)} output files differ, e.g. {differ[:3]}")
            return 1
        print(f"the installed wheel's outputs equal the source checkout's pure path: {len(a_out)} files, byte for byte")
        return 0
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
