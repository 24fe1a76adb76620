"""Byte-compare every output and state of the sample vaults as written by two commits of this project.

    python bench/compare_outputs.py [--base REF]   (default: the commit before HEAD)

A refactor of the runtime must not change a byte of what users get.  This
checks out ``REF`` into a temporary worktree, builds the same vaults twice —
``examples/vault``, the resume-test vault (real ETH trades with duplicates,
gaps, late and bad lines; sparse BTC across midnight with whales; generated
books with gaps, resets and checksums; confluence, poor levels), and the real
Binance-as-OKX trade days of ``tests/data`` — runs ``indicators run``
from each tree, then compares every file under ``derived/`` (the outputs: any
byte that differs fails) and ``state/`` (listed when they differ: a state may
legitimately record more, e.g. a setting an indicator gained).  It prints one
line per vault and exits 1 if an output differs.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _vaults(root: Path) -> dict[str, Path]:
    """The sample vaults, built fresh under ``root`` (by this tree's test helpers)."""
    sys.path.insert(0, str(REPO))
    from tests.resume_cases import materialize
    from tests.vaults import ETH_2023, ETH_PERP

    out: dict[str, Path] = {}
    shutil.copytree(REPO / "examples" / "vault", root / "examples", ignore=shutil.ignore_patterns("derived", "state"))
    out["examples/vault"] = root / "examples"
    materialize(root / "resume", 1.0)
    out["resume cases"] = root / "resume"
    for name, src in (("eth-perp-2024-08-08", ETH_PERP), ("eth-2023-02-02", ETH_2023)):
        dst = root / name / "raw" / "trades" / "okx" / "perps" / src.name
        shutil.copytree(src, dst)
        out[f"tests/data/binance-as-okx/{name}"] = root / name
    return out


def _run(tree: Path, vault: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet", "--jobs", "1"],
                          env=env, cwd=tree, capture_output=True, text=True)
    return f"exit {done.returncode}" + (f": {done.stderr.strip().splitlines()[-1]}" if done.returncode else "")


def _files(vault: Path, top: str) -> set[str]:
    """Every file under ``top`` (the instrument locks, which hold a process id, left out)."""
    return {p.relative_to(vault).as_posix() for p in (vault / top).rglob("*") if p.is_file() and ".locks" not in p.parts}


def _differences(a: Path, b: Path, top: str) -> list[str]:
    files = _files(a, top) | _files(b, top)
    return [f for f in sorted(files) if not ((a / f).is_file() and (b / f).is_file() and filecmp.cmp(a / f, b / f, shallow=False))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD~1", help="the commit to compare against (default: HEAD~1)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        base = tmp_path / "base-tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(base), args.base], check=True)
        try:
            failed = 0
            built = _vaults(tmp_path / "vaults")
            for name, vault in built.items():
                here, there = tmp_path / "here" / vault.name, tmp_path / "there" / vault.name
                shutil.copytree(vault, here)
                shutil.copytree(vault, there)
                status = (_run(REPO, here), _run(base, there))
                diff = _differences(here, there, "derived")
                states = _differences(here, there, "state")
                count = sum(1 for p in (here / "derived").rglob("*.jsonl")) if (here / "derived").is_dir() else 0
                same = not diff and status[0] == status[1]
                failed += not same
                print(f"{'same' if same else 'DIFFERENT':<9} {name}: {count} outputs; runs {status[0]} / {status[1]}"
                      + (f"; differ: {', '.join(diff[:5])}{' ...' if len(diff) > 5 else ''}" if diff else "")
                      + (f"; states that differ: {len(states)} ({', '.join(states[:3])}{' ...' if len(states) > 3 else ''})"
                         if states else "; states identical"))
            print(f"{len(built) - failed} of {len(built)} vaults byte-identical to {args.base}")
            return 1 if failed else 0
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)


if __name__ == "__main__":
    sys.exit(main())
