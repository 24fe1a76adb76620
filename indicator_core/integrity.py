"""What a state remembers of the trade files, to notice files changed behind its back.

Two checks, both cheap:

* **The file the cursor is in.**  At each commit the cursor records the
  file's size and a digest of the bytes around what was read (the first 4 KiB
  and the last 4 KiB before the offset).  The next run compares: a file now
  shorter than the offset was truncated (or the cursor is past its end), a
  different digest means the file was rewritten; either way the bytes the
  outputs were made from are gone, so the instrument stops with a message
  instead of reading on from an offset that no longer means anything.
  Appending to the file leaves both checks alone.
* **Files before the cursor.**  A state records the day files it has read
  before the cursor's file (as ranges of consecutive dates per file name
  pattern, a few bytes however long the history).  A file that sorts before
  the cursor and is not among them was added after the stream passed its place
  (a re-downloaded missing day): it is *backfill*, which the stream cannot
  take in without a rebuild; it is reported with the command that does it.

Old state files have neither record: they load, without the checks, and the
first commit adds them (the files before the cursor at that time count as read).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Iterable

from .sources.files import Cursor, TradeFile

WINDOW = 4096
# only plain files are checked byte by byte: the offset of a cursor in any other kind of file
# (a compressed day, read whole) is not a position in the bytes on disk
PLAIN = (".jsonl", ".csv")


def window_digest(path: Path, offset: int) -> str:
    """A digest of the first and the last ``WINDOW`` bytes before ``offset`` (fewer if the file is shorter)."""
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        h.update(f.read(min(WINDOW, offset)))
        start = max(offset - WINDOW, 0)
        f.seek(start)
        h.update(f.read(offset - start))
    h.update(offset.to_bytes(8, "little"))
    return h.hexdigest()


def _checked(files: list[TradeFile], cursor: Cursor) -> TradeFile | None:
    if cursor.file is None or not cursor.file.endswith(PLAIN):
        return None
    for f in files:
        if f.name == cursor.file:
            return None if f.ghost else f
    return None


def stamp(files: list[TradeFile], cursor: Cursor) -> Cursor:
    """``cursor`` with the size and digest of its file now (for committing it)."""
    f = _checked(files, cursor)
    if f is None:
        return cursor
    try:
        size = f.path.stat().st_size
        digest = window_digest(f.path, cursor.offset) if size >= cursor.offset else None
    except FileNotFoundError:
        return cursor
    return dataclasses.replace(cursor, size=size, digest=digest)


def changed(files: list[TradeFile], cursor: Cursor, digest: bool = True) -> str | None:
    """Why the file ``cursor`` is in is no longer the file it was read from, or ``None``.

    With ``digest=False`` only the size is looked at, unless it changed since
    the stamp (a follower between its passes: the bytes are read only when the
    file changed size).
    """
    f = _checked(files, cursor)
    if f is None:
        return None
    try:
        size = f.path.stat().st_size
    except FileNotFoundError:
        return None  # a vanished file is reported by the listing of the files
    if size < cursor.offset:
        was = f" (it had {cursor.size:,} bytes)" if cursor.size is not None else ""
        return (f"{f.path} has {size:,} bytes but {cursor.offset:,} of it were already read{was}: "
                "it was truncated or replaced by a shorter file")
    if cursor.digest is None or (not digest and size == cursor.size):
        return None
    if window_digest(f.path, cursor.offset) != cursor.digest:
        return (f"{f.path} was rewritten: its first {cursor.offset:,} bytes, already read, are not the bytes "
                "they were when they were read")
    return None


# --- the files read before the cursor ---------------------------------------------------------


def template(f: TradeFile) -> str:
    """The file's name with its date replaced by ``{date}`` (the date is always in the name)."""
    k = f.name.rfind(f.date)
    return f.name[:k] + "{date}" + f.name[k + len(f.date):]


class FilesRead:
    """Day files read before a cursor: per name template, ranges of consecutive dates."""

    def __init__(self, ranges: dict[str, list[list[int]]] | None = None) -> None:
        self.ranges: dict[str, list[list[int]]] = ranges or {}

    @staticmethod
    def _day(date: str) -> int:
        return dt.date.fromisoformat(date).toordinal()

    def __contains__(self, f: TradeFile) -> bool:
        d = self._day(f.date)
        return any(a <= d <= b for a, b in self.ranges.get(template(f), ()))

    def add(self, f: TradeFile) -> None:
        d = self._day(f.date)
        rs = self.ranges.setdefault(template(f), [])
        for r in rs:
            if r[0] - 1 <= d <= r[1] + 1:
                r[0], r[1] = min(r[0], d), max(r[1], d)
                break
        else:
            rs.append([d, d])
        rs.sort()
        merged: list[list[int]] = []
        for r in rs:
            if merged and r[0] <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], r[1])
            else:
                merged.append(r)
        self.ranges[template(f)] = merged

    def add_all(self, files: Iterable[TradeFile]) -> None:
        for f in files:
            if f not in self:
                self.add(f)

    def to_state(self) -> dict[str, list[list[str]]]:
        iso = lambda d: dt.date.fromordinal(d).isoformat()  # noqa: E731
        return {t: [[iso(a), iso(b)] for a, b in rs] for t, rs in sorted(self.ranges.items())}

    @classmethod
    def from_state(cls, data: dict | None) -> "FilesRead | None":
        if data is None:
            return None
        return cls({str(t): [[cls._day(a), cls._day(b)] for a, b in rs] for t, rs in data.items()})


def index(files: list[TradeFile], cursor: Cursor) -> int:
    """Index in ``files`` of the cursor's file (0 for a cursor that has read nothing)."""
    if cursor.file is None:
        return 0
    for k, f in enumerate(files):
        if f.name == cursor.file:
            return k
    return 0


def backfill(files: list[TradeFile], cursor: Cursor, read: FilesRead) -> list[TradeFile]:
    """Files that sort before ``cursor``'s file but were not read: added behind the stream."""
    return [f for f in files[: index(files, cursor)] if not f.ghost and f not in read]


def quoted(arg: object) -> str:
    """An argument as typed in a shell: in double quotes when it holds a space (cmd, PowerShell and sh alike)."""
    text = str(arg)
    return f'"{text}"' if any(c.isspace() for c in text) or not text else text


def reset_all_command(vault: Path, inst_id: str) -> str:
    return f"indicators reset --vault {quoted(vault)} --indicator all --inst {quoted(inst_id)}"


def take_in_command(vault: Path, inst_id: str) -> str:
    return f"{reset_all_command(vault, inst_id)} && indicators run --vault {quoted(vault)} --inst {quoted(inst_id)}"


def backfill_message(label: str, names: list[str]) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"{label}: {shown} {'is' if len(names) == 1 else 'are'} dated before the files already read and "
            f"{'was' if len(names) == 1 else 'were'} not read (added after the stream passed that day); the "
            "outputs go on without {}".format("it" if len(names) == 1 else "them"))


def backfill_fix(vault: Path, inst_id: str) -> str:
    return (f"to take it in, rebuild the instrument from all of its files (put back any day moved away first): "
            f"{take_in_command(vault, inst_id)}")



def backfill_of_state(vault: Path, root: str, patterns: list[str], exchange: str, market: str, inst_id: str,
                      state: dict) -> list[str]:
    """For ``indicators status``: the names of the files a saved state has not read and never will."""
    from .errors import IndicatorError
    from .sources.files import list_files

    try:
        read = FilesRead.from_state(state.get("files_read"))
        folder = vault / root / exchange / market / inst_id
        if read is None or not folder.is_dir():
            return []
        cursor = Cursor.from_state(state.get("cursor") or {})
        files = list_files(folder, inst_id, patterns, [cursor])
    except (IndicatorError, OSError, ValueError, TypeError, AttributeError):
        return []  # whatever is wrong there, the run says it
    return [f.name for f in backfill(files, cursor, read)]
