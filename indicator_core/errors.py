"""Errors the command line turns into exit statuses (SPEC section 9)."""

from __future__ import annotations


class IndicatorError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_status = 1


class ConfigError(IndicatorError):
    """Bad usage or a bad config file: exit status 2."""

    exit_status = 2


class UnknownInstrumentError(ConfigError):
    """An instrument with no contract definition; it is never guessed."""


class StateError(IndicatorError):
    """A state file that cannot be trusted (corrupt, truncated, unknown format)."""


class FingerprintMismatch(ConfigError):
    """An indicator's parameters changed after it wrote output."""


class LockedError(IndicatorError):
    """Another run holds the vault."""


def os_error_message(exc: OSError, doing: str = "", after: str = "outputs and state stay as of the last commit") -> str:
    """A user's message for an operating-system error: what failed, on which file, and how to fix it."""
    import errno

    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    what = exc.strerror or str(exc) or type(exc).__name__
    head = f"{doing}: " if doing else ""
    text = f"{head}{what}" + (f": {where}" if where else "")
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        fix = "the disk is full: free some space (or move the vault) and run again"
    elif exc.errno == errno.EROFS:
        fix = ("the file system is mounted read-only, and state/ and derived/ must be writable: "
               "mount it writable (or move the vault) and run again")
    elif exc.errno in (errno.EACCES, errno.EPERM) or isinstance(exc, PermissionError):
        fix = ("this user may not use that file or folder (read-only, or owned by another user): "
               "state/ and derived/ must be writable and raw/ readable for this user; fix the permissions and run again")
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST) or isinstance(exc, (NotADirectoryError, FileExistsError)):
        fix = "a file is in the way where a folder is expected: move it away and run again"
    elif exc.errno == errno.EISDIR or isinstance(exc, IsADirectoryError):
        fix = "a folder is in the way where a file is expected: move it away and run again"
    else:
        fix = "fix the cause and run again"
    return f"{text}\n  {fix}" + (f"; {after}" if after else "")


class StorageError(IndicatorError):
    """The vault's disk refused a write (full, read-only, permissions): the run stops, whatever the instrument."""
