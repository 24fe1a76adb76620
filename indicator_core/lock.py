"""One run per vault: an OS file lock that dies with its holder.

``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows are both released
by the operating system when the process exits or is killed, so a crashed run
never leaves a stale lock behind.  The holder's pid is written into the file
for the error message.
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


class VaultLock:
    """``with VaultLock(vault): ...`` holds ``{vault}/state/.lock`` or raises :class:`LockedError`."""

    def __init__(self, vault: Path) -> None:
        self.path = vault / "state" / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "VaultLock":
        vault = self.path.parent.parent
        if not vault.is_dir():  # never create a vault: a mistyped path must leave nothing behind
            raise IndicatorError(f"no vault at {vault}: no such folder")
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndicatorError(os_error_message(exc, "cannot take the vault's lock", after="nothing was changed")) from exc
        if not _try_lock(fd):
            try:
                holder = os.pread(fd, 64, 1).decode(errors="replace").strip() if hasattr(os, "pread") else ""
            except OSError:
                holder = ""
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockedError(
                f"another run is using the vault {self.path.parent.parent}{who}; "
                "wait for it to finish (the lock is released automatically when that process ends)"
            )
        # byte 0 is the locked byte on Windows; the pid follows it (only for the message of a refused run)
        try:
            os.lseek(fd, 1, os.SEEK_SET)
            os.write(fd, str(os.getpid()).encode().ljust(20))
        except OSError:
            pass  # a full disk: the lock holds all the same
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
