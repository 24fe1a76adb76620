"""Files on disk: output paths, append-only JSONL outputs and atomic state files.

The commit protocol (SPEC section 8): an output file only ever grows by
whole records; its *committed length* is recorded in the owner's state file,
which is replaced atomically after the output bytes are on disk (flush +
fsync).  A run starts by cutting every output back to its committed length,
so whatever a killed run appended after its last commit disappears and is
written again, identically, from the saved cursor.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import orjson

from .errors import StateError

STATE_FORMAT = 1


# A folder name the vault uses for an exchange, a market or an instrument: letters, digits, ``.``, ``_``, ``-``.
# Discovery skips (and lists) other folders; the config accepts exactly these as instrument ids.
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class InstrumentKey:
    """Where an instrument's data lives: ``{exchange}/{market}/{inst_id}``."""

    exchange: str
    market: str
    inst_id: str

    @property
    def label(self) -> str:
        return f"{self.exchange}/{self.market}/{self.inst_id}"


def derived_dir(vault: Path, indicator: str, key: InstrumentKey) -> Path:
    return vault / "derived" / indicator / key.exchange / key.market / key.inst_id


def state_path(vault: Path, indicator: str, key: InstrumentKey) -> Path:
    return vault / "state" / indicator / key.exchange / key.market / f"{key.inst_id}.state.json"


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # Windows has no directory handles to fsync; os.replace is atomic there
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# At most this many fsyncs at once (:func:`at_once`).
SYNC_THREADS = 8


class _Helpers:
    """The threads :func:`at_once` hands calls to, started when first needed and kept for the process's life.

    A commit runs at_once twice, and a pass commits every few seconds (a follower, or a small
    ``commit_seconds``, far more often): threads started and ended for each would be thousands a run, and
    each start and end takes its turn at the GIL with every other thread of the process (a cluster
    worker's event loop and profiler among them), so kept ones cost less and contend less.  A forked
    child (a pool worker started by ``fork``) has none of its parent's threads: it starts its own.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.pid = os.getpid()

    def run(self, job: Callable[[], None], count: int) -> None:
        """Have ``count`` helper threads each run ``job`` (queued behind the calls of other at_once callers)."""
        with self.lock:
            if self.pid != os.getpid():  # a forked child: the parent's threads are not here
                self.jobs, self.threads, self.pid = queue.SimpleQueue(), [], os.getpid()
            self.threads = [t for t in self.threads if t.is_alive()]  # (one a call's BaseException ended)
            while len(self.threads) < count:
                t = threading.Thread(target=self._serve, args=(self.jobs,), name="fsync", daemon=True)
                t.start()
                self.threads.append(t)
            for _ in range(count):
                self.jobs.put(job)

    @staticmethod
    def _serve(jobs: "queue.SimpleQueue[Callable[[], None]]") -> None:
        while True:
            jobs.get()()


_HELPERS = _Helpers()


def at_once(calls: list[Callable[[], Any]]) -> list[BaseException | None]:
    """Run ``calls`` (fsyncs, or writes that end in one) side by side; what each raised, or ``None``.

    An fsync waits for the disk without the GIL, and a file system commits
    the fsyncs that wait together in one journal write: a commit's dozen
    files synced at once take about a third of the time of one after the
    other.  Every call has ended when this returns, so a caller can still
    order its steps (every output on disk before any state names it).
    """
    errors: list[BaseException | None] = [None] * len(calls)
    pending = iter(range(len(calls)))
    draw = threading.Lock()

    def work() -> None:
        while True:
            with draw:
                k = next(pending, None)
            if k is None:
                return
            try:
                calls[k]()
            except Exception as exc:
                errors[k] = exc

    # kept threads (_Helpers), not concurrent.futures: importing that (and logging) would add to every command's
    # start.  This thread takes its share too; a helper that comes to it late finds nothing left.
    helpers = min(len(calls), SYNC_THREADS) - 1
    if helpers > 0:
        ended: queue.SimpleQueue[None] = queue.SimpleQueue()

        def job() -> None:
            try:
                work()
            finally:
                ended.put(None)

        _HELPERS.run(job, helpers)
    work()
    for _ in range(max(helpers, 0)):
        ended.get()
    return errors


def raise_first(errors: list[BaseException | None]) -> None:
    for exc in errors:
        if exc is not None:
            raise exc


def encode_state(state: dict[str, Any]) -> bytes:
    """A state file's bytes (raises ``orjson.JSONEncodeError`` for a value JSON cannot hold)."""
    return orjson.dumps({"format": STATE_FORMAT, **state}, option=orjson.OPT_INDENT_2) + b"\n"


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: temporary file, flush, fsync, rename (see :func:`write_state_bytes`)."""
    write_state_bytes(path, encode_state(state))


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write a whole file atomically: temporary file, flush, fsync, rename (a reader sees the old bytes or the
    new, never a part); a write that fails leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:  # a full disk must not also leave a half-written temporary file behind
            tmp.unlink()
        except OSError:
            pass
        raise


def write_state_bytes(path: Path, data: bytes) -> None:
    """Write a state file's ``data`` (:func:`encode_state`) atomically (:func:`write_file_atomic`).

    The folder is not fsynced after the rename: if a power loss undoes the
    rename, the previous state is back, whose outputs are cut back to its
    own committed lengths and redone from its own cursor, which gives the
    same bytes.  (A folder is fsynced when an output file is created in it,
    because a state must never name an output that a power loss removed.)
    """
    write_file_atomic(path, data)


def read_state(path: Path) -> dict[str, Any] | None:
    """The state at ``path``, ``None`` if there is none; a damaged file is an error, never a fresh start."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc.strerror}") from exc
    try:
        state = orjson.loads(data)
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise StateError(
            f"state file {path} is damaged ({exc}). Restore it from a backup, or rebuild this "
            "indicator with `indicators reset`; the run stops rather than start over and write "
            "duplicate records"
        ) from exc
    fmt = state.get("format")
    if fmt != STATE_FORMAT:
        raise StateError(
            f"state file {path} has format {fmt!r}; this version reads format {STATE_FORMAT}. "
            "Use the version of indicator-core that wrote it, or rebuild with `indicators reset`"
        )
    return state


class OutputFile:
    """An append-only JSONL output with a committed length.

    Records are buffered in memory and handed to the file a MiB at a time; a
    commit puts them on disk (:meth:`syncs`, then :meth:`synced`), and the
    length then is what the owner records in its state.
    """

    FLUSH_BYTES = 1 << 20

    def __init__(self, path: Path, committed: int) -> None:
        self.path = path
        self.length = committed
        # one growing buffer, not a list of records: orjson's bytes carry kilobytes of spare capacity
        self._buf = bytearray()
        self._fh = None
        self._unsynced = False  # bytes handed to the OS since the last fsync
        self._new_entry = False  # the file was created since the last commit: its folder's entry to sync too

    def recover(self) -> None:
        """Cut the file back to its committed length (undo a killed run's tail)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
            if self.length:
                raise StateError(
                    f"output {self.path} is missing but its state says {self.length} bytes were written; "
                    "restore the file or rebuild the indicator with `indicators reset`"
                ) from None
        if size < self.length:
            raise StateError(
                f"output {self.path} has {size} bytes but its state says {self.length} were committed "
                "(was it edited or truncated?); restore it or rebuild with `indicators reset`"
            )
        if size > self.length:
            with open(self.path, "r+b") as f:
                f.truncate(self.length)
                f.flush()
                os.fsync(f.fileno())

    def write(self, line: bytes) -> None:
        self._buf += line
        if len(self._buf) >= self.FLUSH_BYTES:
            self._drain()

    def _drain(self) -> None:
        if not self._buf:
            return
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._new_entry = True  # synced with the file's bytes, before any state names the file
            self._fh = open(self.path, "ab")
        self._fh.write(self._buf)
        self.length += len(self._buf)
        self._buf.clear()
        self._unsynced = True

    def syncs(self) -> list[Callable[[], None]]:
        """Hand every record to the OS, and the fsyncs that would put them on disk (run them, then :meth:`synced`).

        A commit gathers the fsyncs of all its outputs and runs them at once
        (:func:`at_once`). A new file's folder is synced with the file: a state
        must never name an output that a power loss could remove.
        """
        self._drain()
        calls: list[Callable[[], None]] = []
        if self._unsynced:
            if self._fh is None:  # written through and closed by an earlier pass
                self._fh = open(self.path, "ab")
            self._fh.flush()
            calls.append(partial(os.fsync, self._fh.fileno()))
        if self._new_entry:
            calls.append(partial(_fsync_dir, self.path.parent))
        return calls

    def synced(self) -> None:
        """After :meth:`syncs` all ran: the records are on disk, :attr:`length` of them."""
        self._unsynced = self._new_entry = False

    def uncommitted(self) -> bool:
        """Records were written since the last commit (:meth:`synced`)."""
        return bool(self._buf) or self._unsynced

    def write_through(self) -> None:
        """Hand every buffered record to the operating system (readers see it), without a commit."""
        self._drain()
        if self._fh is not None:
            self._fh.flush()

    def discard(self) -> None:
        """Forget unflushed records (after a failure: the file is recovered next run)."""
        self._buf.clear()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
