"""The ``indicators`` command's entry point (also ``python -m indicator_core``): its process set up, then the
command line (:func:`indicator_core.cli.console`).

numpy's bundled OpenBLAS starts a thread per core when numpy is imported, and each spins looking for work for
~0.1 s of CPU before it sleeps: on a small machine, a core taken from the run's own threads, in the command's
process and in every pool worker it starts.  The command never calls BLAS, so it asks for no such thread (a
count the user set is kept).  That is done here, before anything imports numpy, and not in a module a
program may import to embed the engine, which keeps its own BLAS settings.
"""

from __future__ import annotations

import gc
import os


def console() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The imports (numpy, pydantic building its models, the command's modules) make tens of thousands of
    # objects that live as long as the process, and the collector would walk them ~100 times on the way
    # (measured: 88 young and 8 middle collections, ~10 ms of a ~200 ms start).  Next to none of it is
    # garbage (a few hundred objects, frozen with the rest): no collection while they load, then they are
    # set aside (gc.freeze) so that no later collection walks them.
    gc.disable()
    try:
        from .cli import console as command_line
    finally:
        gc.freeze()
        gc.enable()
    command_line()
