"""The ``indicators`` command's entry point (also ``python -m indicator_core``): its process set up, then the
command line (:func:`indicator_core.cli.console`).

numpy's bundled OpenBLAS starts a thread per core when numpy is imported, and each spins looking for work for
~0.1 s of CPU before it sleeps: on a small machine, a core taken from the run's own threads, in the command's
process and in every pool worker it starts.  The command never calls BLAS, so it asks for no such thread (a
count the user set is kept).  That is done here, before anything imports numpy, and not in a module a
program may import to embed the engine, which keeps its own BLAS settings.
"""

from __future__ import annotations

import os


def console() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .cli import console as command_line

    command_line()
