"""The ``indicators`` command's entry point (also ``python -m indicator_core``): its process set up, then the
command line (:func:`indicator_core.cli.console`).

numpy's bundled OpenBLAS starts a thread per core when numpy is imported, and each spins looking for work for
~0.1 s of CPU before it sleeps: on a small machine, a core taken from the run's own threads, in the command's
process and in every pool worker it starts.  The command never calls BLAS, so it asks for no such thread (a
count the user set is kept).  That is done here, before anything imports numpy, and not in a module a
program may import to embed the engine, which keeps its own BLAS settings.

Likewise pydantic looks for plugins of its own (an entry-point group of every installed distribution) when
the first model class is made: a scan of each distribution's metadata, ~8 ms of every start, for plugins
(validation tracing) that the command's config models have no use for.  The command turns them off
(``PYDANTIC_DISABLE_PLUGINS``) unless the variable is set (an empty value keeps them on).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Callable

YOUNG_COLLECTION_EVERY = 10_000  # new container objects between two young collections (Python's default: 700)

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc to reuse the memory a chunk's columns are freed into, instead of unmapping it (Linux).

    A pass makes a few MiB of columns a chunk and frees them a chunk later.  By default glibc hands blocks
    that large back to the kernel (a separate map each, or a trimmed heap), and the next chunk's columns
    are fresh pages again, each zeroed by a page fault: ~20,000 faults in a 4M-trade run.  Kept in the heap,
    they are reused warm.  The peak stays the pass's few chunks in flight (a few MiB more, not the file's
    size).  Returns whether it was asked.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # numpy imports it anyway

        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 64 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 256 << 20))
    except (OSError, AttributeError):  # not glibc (musl has no such knobs worth setting)
        return False


def console() -> None:
    if sys.argv[1:] == ["--version"]:  # answered before the command line and its models load
        from . import __version__

        print(f"indicator-core {__version__}")
        return
    load()()


def load() -> Callable[[], None]:
    """The command's process set up and its modules loaded: what every command but ``--version`` does before it
    reads its arguments.  Returns the command line (:func:`indicator_core.cli.console`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    # The imports (numpy, pydantic building its models, the command's modules) make tens of thousands of
    # objects that live as long as the process, and the collector would walk them ~100 times on the way
    # (measured: 88 young and 8 middle collections, ~10 ms of a ~200 ms start).  Next to none of it is
    # garbage (a few hundred objects, frozen with the rest): no collection while they load, then they are
    # set aside (gc.freeze) so that no later collection walks them.
    gc.disable()
    try:
        keep_freed_memory()
        from .cli import console as command_line
    finally:
        gc.freeze()
        # What a command loads later (the run's numpy and plugins) and what a pass makes is mostly freed by
        # reference counts, not by the collector: a young collection every 10,000 new containers instead of
        # 700 takes a 1M-trade run from ~45 collections (6-9 ms) to 4 (3-4 ms), and the garbage a collection
        # finds stays a few MiB at most.
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
        gc.enable()
    return command_line
