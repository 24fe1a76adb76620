"""Build of the optional compiled kernels; everything else is declared in pyproject.toml.

The kernels (``indicator_core/_native_*.c``) speed up parsing; they are
optional.  Where no C compiler is at hand (a Windows machine without Visual
C++ Build Tools, say) the build of a kernel fails with a warning, the install
goes on, and the project runs its pure numpy/Python paths instead: the same
outputs, only slower.  ``indicators plugins`` says which path a run takes.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """A kernel that does not compile is left out with a warning instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all: setuptools fails before building any extension
            self._skip("the compiled kernels", exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skip(ext.name, exc)

    @staticmethod
    def _skip(what: str, exc: Exception) -> None:
        if os.environ.get("INDICATOR_CORE_REQUIRE_KERNELS", "").strip() not in ("", "0"):
            raise SystemExit(f"error: {what} not built ({exc}), and INDICATOR_CORE_REQUIRE_KERNELS is set "
                             "(a wheel built for others must carry its kernels)")
        print(f"warning: {what} not built ({exc}); the pure Python path will be used (same outputs, slower)")


KERNELS = [
    Extension("indicator_core._native_trades", ["indicator_core/_native_trades.c"], optional=True),
    Extension("indicator_core._native_books", ["indicator_core/_native_books.c"], optional=True),
    Extension("indicator_core._native_derivs", ["indicator_core/_native_derivs.c"], optional=True),
    Extension("indicator_core._native_json", ["indicator_core/_native_json.c"], optional=True),
]

setup(ext_modules=KERNELS, cmdclass={"build_ext": OptionalBuildExt})
