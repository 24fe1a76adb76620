"""Tests that run on both paths: with a compiled kernel, and with the pure code it stands in for."""

from __future__ import annotations

from types import ModuleType

import pytest

from indicator_core import native


def on_both_paths(kernel: str, *modules: ModuleType):
    """A module-scoped, autouse fixture: every test of the module that assigns it runs twice, once with
    ``indicator_core._native_<kernel>`` as the ``_KERNEL`` of ``modules`` and once with ``None`` there
    (skipped where the kernel is not built)."""
    loaded = native.load(kernel)

    @pytest.fixture(scope="module", autouse=True, params=["compiled", "pure"])
    def kernel_path(request):
        if request.param == "compiled" and loaded is None:
            pytest.skip(f"the compiled {kernel} kernel is not built in this install")
        saved = [m._KERNEL for m in modules]
        for m in modules:
            m._KERNEL = loaded if request.param == "compiled" else None
        yield request.param
        for m, k in zip(modules, saved):
            m._KERNEL = k

    return kernel_path
