"""Instruments side by side: worker processes on this machine, or a Dask cluster.

A task is one instrument: its lock, then :func:`.instrument_pass.run_streams` (one
pass over its new trades, committed).  Instruments share nothing but the vault
folder, so running them in any order, in any process, writes the same bytes as
running them one after another; and since every task commits as SPEC section 8
says, a task killed anywhere (Ctrl-C, kill -9 of the parent or of a worker, a
cluster worker lost) is redone from its last commit by the next run.

- ``jobs == 1`` or a single instrument: the tasks run in this process, no pool.
- ``jobs > 1``: a :class:`~concurrent.futures.ProcessPoolExecutor` of
  ``min(jobs, instruments)`` processes, forked on Linux, started from a fork
  server on macOS and spawned on Windows (:func:`_context`).  Workers send
  their byte counts to one progress display.  A worker reads and parses inline unless every worker's
  read-ahead thread has a core of its own (:func:`worker_threads`).
- ``scheduler``: the same tasks submitted to a Dask ``distributed`` scheduler;
  every worker must see the vault at the same path (a shared filesystem).  A
  task whose worker dies is given to another worker by the scheduler.

Each instrument's outcome is an :class:`~.summary.InstrumentSummary`; a failed
one carries its ``error`` (and the exit status it calls for) instead of
stopping the other instruments.
"""

from __future__ import annotations

import decimal
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndicatorError, LockedError
from ..lock import InstrumentLock
from ..numbers import EXACT
from ..prefetch import usable_cores
from ..progress import ProgressFactory, no_progress
from ..storage import InstrumentKey
from .host import Host
from .instrument_pass import run_streams
from .summary import Failure, InstrumentSummary


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity where the system has one)."""
    return usable_cores()


def worker_threads(cores: int, workers: int) -> bool:
    """Whether each of ``workers`` pool workers may read and parse ahead in a helper thread of its own: only
    when every worker's helper has a core to itself (a few instruments on a large machine).  Otherwise the
    other cores run other workers, and a helper would only add hand-offs of the GIL to the CPU time."""
    return cores >= 2 * workers


def failed(key: InstrumentKey, error: str, status: int = 1,
           fix: str = "run again: the instrument continues from its last commit"):
    """The summary of an instrument that a task could not process (``status``: the exit status it calls for)."""
    return InstrumentSummary(key, failures=[Failure(error, fix)], status=status)


def instrument_task(host, vault: Path, key: InstrumentKey, streams: list[tuple[str, Path]],
                    progress: ProgressFactory = no_progress, wait_seconds: float = 0.0) -> list:
    """One instrument under its lock; a failure the user can act on becomes the summary's error.

    With ``wait_seconds`` a held lock is tried again every second until then (a cluster task given
    to a new worker may find the lock of the lost one still held, e.g. until a network filesystem
    lets a dead machine's lease go)."""
    deadline = time.monotonic() + wait_seconds
    lock = InstrumentLock(vault, key)
    while True:
        try:
            lock.__enter__()
            break
        except LockedError as exc:
            if time.monotonic() >= deadline:
                return [failed(key, str(exc), exc.exit_status, "wait for the other run to finish, then run again")]
            time.sleep(1.0)
        except IndicatorError as exc:
            return [failed(key, str(exc), exc.exit_status)]
    try:
        return run_streams(host, vault, key, streams, progress)
    except IndicatorError as exc:
        return [failed(key, str(exc), exc.exit_status)]
    finally:
        lock.release()


def _unexpected(key: InstrumentKey, exc: BaseException):
    text = "".join(traceback.format_exception(exc)).rstrip()
    return failed(key, f"{key.label}: unexpected error, please report it with this trace:\n{text}")


def run_tasks(host, vault: Path, instruments: list[tuple[InstrumentKey, Path]], progress: ProgressFactory = no_progress,
              jobs: int = 1, scheduler: Any = None) -> list:
    """Every instrument's summary, in the order given."""
    if scheduler is not None:
        return run_dask(host, vault, instruments, scheduler)
    if jobs <= 1 or len(instruments) <= 1:
        done = []
        for key, streams in instruments:
            done += instrument_task(host, vault, key, streams, progress)
            if any(f.kind == "stopped" for f in done[-1].failures):
                break  # the disk refused a write: the other instruments would fail the same way
        return done
    return run_pool(host, vault, instruments, progress, jobs)


# -- worker processes on this machine ------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(host_or_cfg, vault: Path, queue, threads: bool = False) -> None:
    """A pool worker: its plugins and settings (a forked worker has the parent's :class:`~.host.Host`, a
    spawned one loads them from the settings once), then tasks."""
    import signal

    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends a worker at once; the parent reports it
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    queue.cancel_join_thread()  # progress messages are not worth waiting for at exit (a killed sibling may block them)
    decimal.setcontext(EXACT.copy())
    host = host_or_cfg if isinstance(host_or_cfg, Host) else Host.load(host_or_cfg)
    host.threads = threads
    _WORKER.update(host=host, vault=vault, queue=queue)


def _exit_with_parent() -> None:
    """A worker whose parent was killed (kill -9) ends too, at once, so that it does not keep the
    instrument's lock while a new run starts; what it committed stays, the rest is redone."""
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        wait([parent.sentinel])
        os._exit(1)


class _QueueProgress:
    def __init__(self, queue, total: int) -> None:
        self.queue = queue
        queue.put(("total", total))

    def update(self, n: int) -> None:
        self.queue.put(("bytes", n))

    def close(self) -> None:
        pass


def _pool_task(key: InstrumentKey, streams: list[tuple[str, Path]]):
    queue = _WORKER["queue"]
    try:
        return instrument_task(_WORKER["host"], _WORKER["vault"], key, streams,
                               lambda total, desc: _QueueProgress(queue, total))
    except Exception as exc:  # a bug: reported with its trace, the other instruments go on
        return _unexpected(key, exc)


def _size(streams: list[tuple[str, Path]]) -> int:
    try:
        return sum(p.stat().st_size for _, folder in streams for p in folder.iterdir() if p.is_file())
    except OSError:
        return 0


def _flat(results: dict[int, Any], n: int) -> list:
    """Every task's summaries (one per kind of stream, or one failure), in the order of the instruments."""
    return [s for i in range(n) for s in (results[i] if isinstance(results[i], list) else [results[i]])]


def _context(host=None):
    """``fork`` on Linux, ``forkserver`` where the system has it otherwise (macOS), ``spawn`` elsewhere (Windows).

    A forked worker starts in milliseconds with the engine and plugins already loaded.  The pool
    forks its workers before this process starts any thread (see :func:`run_pool`), and only a
    process with no other thread forks, so no lock can be copied in a taken state (a process that
    embeds the engine and runs threads of its own gets the fork server).  macOS' system libraries
    do not survive ``fork``, so there a fork server, which imports the engine and plugins once,
    forks the workers.  The env
    ``INDICATOR_CORE_START_METHOD`` picks another start method (``spawn`` runs on Linux exactly
    what Windows runs).
    """
    import multiprocessing

    method = os.environ.get("INDICATOR_CORE_START_METHOD", "").strip()
    methods = multiprocessing.get_all_start_methods()
    if not method:
        alone = threading.active_count() == 1  # fork copies other threads' locks as they are: only when alone
        if sys.platform.startswith("linux") and alone:
            method = "fork"
        else:
            method = "forkserver" if "forkserver" in methods else "spawn"
    elif method not in methods:
        raise ConfigError(f"INDICATOR_CORE_START_METHOD={method!r}: this system starts processes with "
                          f"{', '.join(methods)}; set one of those, or unset it")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        plugins = sorted({cls.__module__ for cls in (host.indicators.values() if host is not None else ())})
        ctx.set_forkserver_preload(["indicator_core.runtime.parallel", *plugins])
    return ctx


def run_pool(host, vault: Path, instruments: list[tuple[InstrumentKey, Path]], progress: ProgressFactory,
             jobs: int) -> list:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    from queue import Empty

    ctx = _context(host)
    queue = ctx.Queue()
    results: dict[int, Any] = {}
    # the largest instruments first, so that the last to finish are short ones
    order = sorted(range(len(instruments)), key=lambda i: -_size(instruments[i][1]))
    # a forked worker inherits the host as it is (its arguments are not pickled); others load it again
    forked = ctx.get_start_method() == "fork"
    workers = min(jobs, len(instruments))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(host if forked else host.cfg, vault, queue,
                                         worker_threads(default_jobs(), workers)))
    try:
        # every worker is started at the first submit (with fork: before this process starts a thread,
        # the progress display's included)
        futures = {pool.submit(_pool_task, *instruments[i]): i for i in order}
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    bar = progress(0, f"{len(instruments)} instruments")

    stop = threading.Event()

    # The parent only reads the queue: a worker killed while writing to it may leave its write lock
    # taken for good, and a parent that wrote (or waited for its writes at exit) would hang on it.
    def show() -> None:
        while True:
            try:
                kind, n = queue.get(timeout=0.01)  # the run's end waits for this thread: up to this long
            except Empty:
                if stop.is_set():
                    return
                continue
            if kind == "total":
                if hasattr(bar, "total"):
                    bar.total = (bar.total or 0) + n
                    bar.refresh()
            else:
                bar.update(n)

    shower = threading.Thread(target=show, daemon=True)
    shower.start()
    try:
        for fut in as_completed(futures):
            i = futures[fut]
            key = instruments[i][0]
            try:
                results[i] = fut.result()
            except BrokenProcessPool:
                results[i] = failed(key, (
                    f"{key.label}: stopped unfinished, because a worker process ended abruptly (killed, or out of "
                    "memory) and the pool stops with it; outputs and state are as of the last commit: run again to "
                    "continue from there"))
            except Exception as exc:  # the task could not be sent or its result not received
                results[i] = _unexpected(key, exc)
    except BaseException:  # Ctrl-C: stop the workers now; what they committed stays, the rest is redone
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        stop.set()
        shower.join(timeout=5)
        queue.close()
        queue.cancel_join_thread()
        bar.close()
    return _flat(results, len(instruments))


# -- a Dask distributed cluster -------------------------------------------------------------------------------------

_HOSTS: dict[str, Any] = {}
LOCK_WAIT_SECONDS = 120.0  # a cluster task waits this long for an instrument lock (NFS leases last ~90 s)
NO_WORKERS_NOTICE_SECONDS = 30.0  # a cluster without a worker this long is said on stderr


def _dask_task(token: str, cfg, vault: str, key: InstrumentKey, streams: list[tuple[str, str]]):
    """Runs on a cluster worker: the plugins and settings are loaded once per worker and run."""
    previous = decimal.getcontext()
    decimal.setcontext(EXACT.copy())
    try:
        host = _HOSTS.get(token)
        if host is None:
            _HOSTS.clear()
            host = _HOSTS[token] = Host.load(cfg)
        return instrument_task(host, Path(vault), key, [(k, Path(f)) for k, f in streams],
                               wait_seconds=LOCK_WAIT_SECONDS)
    except Exception as exc:
        return _unexpected(key, exc)
    finally:
        decimal.setcontext(previous)


def run_dask(host, vault: Path, instruments: list[tuple[InstrumentKey, Path]], scheduler: Any) -> list:
    """The tasks on a Dask cluster (``scheduler``: its address, or a ``distributed.Client``)."""
    try:
        from distributed import Client, as_completed
    except ImportError:

        raise ConfigError("--scheduler needs Dask's distributed package: pip install \"indicator-core[dask]\"") from None
    own = not isinstance(scheduler, Client)
    if own:
        import dask

        try:  # how long to try: Dask's own setting (distributed.comm.timeouts.connect, 30 s by default)
            client = Client(scheduler, timeout=dask.config.get("distributed.comm.timeouts.connect"))
        except (OSError, TimeoutError) as exc:
            raise IndicatorError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from exc
        except ValueError as exc:  # distributed reads the address only as it connects: no port, an unknown scheme
    
            raise ConfigError(f"--scheduler {scheduler}: not the address of a Dask scheduler ({exc}); give the one "
                              "the scheduler prints when it starts, e.g. tcp://HOST:8786") from exc
    else:
        client = scheduler
    import uuid

    token = uuid.uuid4().hex
    vault = vault.resolve()
    try:
        futures = {}
        order = sorted(range(len(instruments)), key=lambda i: -_size(instruments[i][1]))
        for i in order:
            key, streams = instruments[i]
            fut = client.submit(_dask_task, token, host.cfg, str(vault), key,
                                [(k, str(Path(f).resolve())) for k, f in streams],
                                key=f"indicators-run-{key.label}-{token}", pure=False)
            futures[fut] = i
        results: dict[int, Any] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=_say_when_no_workers, args=(client, stop), daemon=True)
        watcher.start()
        try:
            for fut in as_completed(list(futures)):
                i = futures[fut]
                key = instruments[i][0]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # KilledWorker: its workers died too often; or the result was lost
                    results[i] = failed(key, (
                        f"{key.label}: the cluster could not finish it ({type(exc).__name__}: {exc}); its outputs "
                        "and state are as of its last commit: run again to continue from there"))
        finally:
            stop.set()
        return _flat(results, len(instruments))
    finally:
        if own:
            client.close()


def _say_when_no_workers(client, stop: threading.Event) -> None:
    """Say on stderr, once a stretch, when the cluster has had no worker for :data:`NO_WORKERS_NOTICE_SECONDS`.

    The tasks wait for a worker (a cluster may grow again, as Dask's own clients wait), so a run on a cluster
    whose workers are all gone (lost, or never started) would otherwise wait in silence."""
    since: float | None = None
    told = False
    while not stop.wait(min(NO_WORKERS_NOTICE_SECONDS / 4, 5.0)):
        try:
            info = client.scheduler_info(n_workers=1)  # whether there is one, not the list of a large cluster
            workers = len(info.get("workers", {}))
            address = info.get("address", "")
        except Exception:  # the scheduler is gone too: the tasks' own errors say so
            return
        now = time.monotonic()
        if workers:
            since, told = None, False
        elif since is None:
            since = now
        elif not told and now - since >= NO_WORKERS_NOTICE_SECONDS:
            print(f"waiting: the Dask cluster at {address} has had no worker for {now - since:.0f} s; the run goes "
                  "on when one joins (start workers, or Ctrl-C to stop: what was committed stays)",
                  file=sys.stderr, flush=True)
            told = True
