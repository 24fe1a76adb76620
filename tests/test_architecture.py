"""The architecture as contracts (``[tool.importlinter]`` in pyproject.toml, docs/ARCHITECTURE.md).

The layers, the absence of import cycles and the plugins' use of the public
API alone are checked by import-linter over this tree; and the same
contracts are shown to break on a copy of the tree where a cycle and a
plugin importing an internal module were added on purpose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.vaults import REPO

LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([*LINT, "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and done.stdout.count("KEPT") >= 3


def test_the_contracts_break_on_a_cycle_and_on_a_plugin_reaching_into_the_runtime(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    for name in ("indicator_core", "plugins"):
        shutil.copytree(REPO / name, tree / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", tree)
    assert _lint(tree).returncode == 0
    storage = tree / "indicator_core" / "storage.py"  # the bottom layer importing the runtime: a cycle
    storage.write_text(storage.read_text(encoding="utf-8") + "\nfrom .runtime import batch  # noqa\n", encoding="utf-8")
    plugin = tree / "plugins" / "whales" / "__init__.py"
    plugin.write_text(plugin.read_text(encoding="utf-8") + "\nfrom indicator_core.runtime import host  # noqa\n",
                      encoding="utf-8")
    done = _lint(tree)
    assert done.returncode != 0
    assert "indicator_core.storage -> indicator_core.runtime.batch" in done.stdout
    assert "plugins.whales -> indicator_core.runtime.host" in done.stdout
    assert done.stdout.count("BROKEN") >= 3


def test_every_public_name_resolves_and_import_alone_loads_nothing_heavy() -> None:
    probe = ("import sys, indicator_core as ic; heavy = [m for m in ('numpy', 'pydantic', 'orjson') if m in sys.modules]; "
             "missing = [n for n in ic.__all__ if getattr(ic, n, None) is None]; print(heavy, missing)")
    done = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("]", 1)[0] == "[", done.stdout  # `import indicator_core` alone imported none of them
    assert done.stdout.strip().endswith("[]"), done.stdout  # and every name of __all__ resolved
