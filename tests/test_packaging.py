"""The built distribution: built-in plugins install as ``indicator_core_plugins``, never as a top-level ``plugins``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from indicator_core.plugins import BUILTIN_PLUGINS
from tests.vaults import REPO


def test_every_plugin_folder_is_packaged_and_registered() -> None:
    """Each package under plugins/ is in pyproject's package list; each built-in has its entry point."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = set(project["tool"]["setuptools"]["packages"])
    for init in (REPO / "plugins").rglob("__init__.py"):
        rel = init.parent.relative_to(REPO / "plugins").parts
        assert ".".join(("indicator_core_plugins", *rel)) in packages, init
    for init in (REPO / "indicator_core").rglob("__init__.py"):  # the host's own subpackages too
        assert ".".join(init.parent.relative_to(REPO).parts) in packages, init
    assert project["tool"]["setuptools"]["package-dir"]["indicator_core_plugins"] == "plugins"
    assert not any(p == "plugins" or p.startswith("plugins.") for p in packages)
    assert project["project"]["entry-points"]["indicator_core"] == BUILTIN_PLUGINS


def test_wheel_has_no_top_level_plugins_and_the_installed_copy_lists_the_builtins(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so the build leaves nothing in the repository
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("indicator_core", "plugins", "indicator_core_plugins"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(src)], check=True, capture_output=True)
    (wheel,) = wheels.glob("indicator_core-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "plugins" not in tops
    assert "indicator_core_plugins" in tops and "indicator_core" in tops
    for module in BUILTIN_PLUGINS.values():
        assert module.replace(".", "/") + "/__init__.py" in names
    init = zipfile.ZipFile(wheel).read("indicator_core_plugins/__init__.py").decode()
    assert "__path__" not in init  # the package itself, not the source-checkout alias
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "plugins." not in zipfile.ZipFile(wheel).read(entry).decode().replace("indicator_core_plugins.", "")

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    assert not (site / "plugins").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    away = tmp_path / "elsewhere"  # not the repository: only the installed copy can be imported
    away.mkdir()
    listed = subprocess.run([sys.executable, "-m", "indicator_core", "plugins", "--json"], env=env, cwd=away,
                            capture_output=True, check=True)
    rows = {r["name"]: r for r in json.loads(listed.stdout) if "module" in r}
    assert set(BUILTIN_PLUGINS) <= set(rows)
    for name, module in BUILTIN_PLUGINS.items():
        assert rows[name]["source"] == "built-in" and rows[name]["module"].startswith(module)
    where = subprocess.run([sys.executable, "-c", "import indicator_core_plugins.whales as m; print(m.__file__)"],
                           env=env, cwd=away, capture_output=True, check=True, text=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(site.resolve())
