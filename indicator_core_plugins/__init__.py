"""The built-in indicators, as a source checkout sees them.

The plugins live in the folder ``plugins/``; an installed copy has them as
the package ``indicator_core_plugins`` (``pyproject.toml`` maps the folder to
that name, so nothing named ``plugins`` lands in site-packages).  This file is
that name in a checkout run without installing: it points the package at
``plugins/``, so ``indicator_core_plugins.volume`` is ``plugins/volume/``.
It is not part of the built distribution.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().parent.parent / "plugins")]
