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


def rejects_of(chunk) -> list[tuple]:
    """``(line, reason, text, ts)`` of every line a parse refused, the same for the column-wise and the
    reference readers: a line refused only for its time has its text only if it is one of the chunk's first
    such lines (the column-wise reader keeps those, the ones the rejects log can show)."""
    from indicator_core.sources.parsed import LISTED_PER_FILE

    out, timed = [], 0
    for r in chunk.all_rejects():
        if r.ts is not None:
            out.append((r.line, r.reason, r.text if timed <= LISTED_PER_FILE else None, r.ts))
            timed += 1
        else:
            out.append((r.line, r.reason, r.text, None))
    return out
