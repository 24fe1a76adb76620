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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: temporary file, flush, fsync, rename.

    The folder is not fsynced after the rename: if a power loss undoes the
    rename, the previous state is back, whose outputs are cut back to its
    own committed lengths and redone from its own cursor, which gives the
    same bytes.  (A folder is fsynced when an output file is created in it,
    because a state must never name an output that a power loss removed.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps({"format": STATE_FORMAT, **state}, option=orjson.OPT_INDENT_2)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:  # a full disk must not also leave a half-written temporary file behind
            tmp.unlink()
        except OSError:
            pass
        raise


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

    Records are buffered in memory and reach the file at :meth:`flush`; the
    length after a flush is what the owner records in its state.
    """

    FLUSH_BYTES = 1 << 20

    def __init__(self, path: Path, committed: int) -> None:
        self.path = path
        self.length = committed
        # one growing buffer, not a list of records: orjson's bytes carry kilobytes of spare capacity
        self._buf = bytearray()
        self._fh = None
        self._unsynced = False  # bytes handed to the OS since the last fsync

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
            created = not self.path.exists()
            self._fh = open(self.path, "ab")
            if created:
                _fsync_dir(self.path.parent)
        self._fh.write(self._buf)
        self.length += len(self._buf)
        self._buf.clear()
        self._unsynced = True

    def flush(self) -> int:
        """Put every record written so far on disk (fsync) and return the file's length."""
        self._drain()
        if self._unsynced:
            if self._fh is None:  # written through and closed by an earlier pass
                self._fh = open(self.path, "ab")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._unsynced = False
        return self.length

    def uncommitted(self) -> bool:
        """Records were written since the last :meth:`flush`."""
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
