"""Locks that die with their holder: one per instrument, and one for the whole vault.

``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows are both released
by the operating system when the process exits or is killed, so a crashed run
never leaves a stale lock behind.  The holder's pid is written into the file
for the error message.

A run locks each instrument while it processes it
(``state/.locks/{exchange}/{market}/{INST_ID}.lock``), so two runs on one
vault may work side by side on different instruments and a run that reaches an
instrument another one holds is refused for it.  Lock files are never deleted
(deleting a held lock file would let a second process lock a new file of the
same name).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from .errors import IndicatorError, LockedError, os_error_message

if os.name == "nt":  # pragma: no cover - exercised on Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _holder(fd: int) -> str:
    """The pid a lock's holder wrote after the locked byte, or ''."""
    try:
        if hasattr(os, "pread"):
            data = os.pread(fd, 64, 1)
        else:  # pragma: no cover - Windows
            os.lseek(fd, 1, os.SEEK_SET)
            data = os.read(fd, 64)
        return data.decode(errors="replace").strip()
    except OSError:
        return ""


class _FileLock:
    """A lock file held with ``with``; raises :class:`LockedError` with :meth:`refusal`'s message."""

    def __init__(self, path: Path, vault: Path) -> None:
        self.path = path
        self.vault = vault
        self._fd: int | None = None

    def refusal(self, who: str) -> str:
        raise NotImplementedError

    def __enter__(self):
        vault = self.vault
        if not vault.is_dir():  # never create a vault: a mistyped path must leave nothing behind
            raise IndicatorError(f"no vault at {vault}: no such folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndicatorError(os_error_message(exc, "cannot take a lock in the vault", after="nothing was changed")) from exc
        if not _try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(self.refusal(f" (pid {holder})" if holder else ""))
        # byte 0 is the locked byte on Windows; the pid follows it (only for the message of a refused run)
        try:
            os.lseek(fd, 1, os.SEEK_SET)
            os.write(fd, str(os.getpid()).encode().ljust(20))
        except OSError:
            pass  # a full disk: the lock holds all the same
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None


class VaultLock(_FileLock):
    """``with VaultLock(vault): ...`` holds ``{vault}/state/.lock`` or raises :class:`LockedError`."""

    def __init__(self, vault: Path) -> None:
        super().__init__(vault / "state" / ".lock", vault)

    def refusal(self, who: str) -> str:
        return (f"another run is using the vault {self.path.parent.parent}{who}; "
                "wait for it to finish (the lock is released automatically when that process ends)")


def instrument_lock_path(vault: Path, exchange: str, market: str, inst_id: str) -> Path:
    return vault / "state" / ".locks" / exchange / market / f"{inst_id}.lock"


class InstrumentLock(_FileLock):
    """``with InstrumentLock(vault, key): ...`` holds one instrument of the vault or raises :class:`LockedError`."""

    def __init__(self, vault: Path, key) -> None:  # key: storage.InstrumentKey
        super().__init__(instrument_lock_path(vault, key.exchange, key.market, key.inst_id), vault)
        self.label = key.label

    def refusal(self, who: str) -> str:
        return (f"{self.label}: another run{who} is processing this instrument; it was left alone. Try again "
                "once that run is done (its lock is released automatically when that process ends); runs on "
                "different instruments (--inst) may share the vault")


class InstrumentLocks:
    """Instrument locks taken one by one and held together (a follower's, or a reset's)."""

    def __init__(self, vault: Path) -> None:
        self.vault = vault
        self.held: dict[object, InstrumentLock] = {}

    def acquire(self, key) -> None:
        if key not in self.held:
            lock = InstrumentLock(self.vault, key)
            lock.__enter__()
            self.held[key] = lock

    def release(self) -> None:
        for lock in self.held.values():
            lock.release()
        self.held.clear()

    def __enter__(self) -> "InstrumentLocks":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def is_held(path: Path) -> bool:
    """Whether some process holds the lock file ``path`` now (for tools and tests; a lock is never waited for)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)
