"""Finding an instrument's trade files and reading them as one stream of chunks.

Files of one instrument are read in date order as one continuous stream
(SPEC section 9).  A *cursor* names a position in that stream: the file and
the byte offset just after the last consumed line.  Chunks always end on a
line end, so a partial last line (a writer still appending) is never
consumed; the last line of a file without its ``\\n`` is consumed only once a
later file of the instrument exists, because only then is it known complete.
"""

from __future__ import annotations

import datetime
import gzip
import mmap
import os
import re
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from ..errors import ConfigError, IndicatorError, StateError
from ..storage import FOLDER_NAME, InstrumentKey, state_path
from .. import native
from .formats import COMPRESSIONS, FormatTable
from .parsed import count_lines, line_ends

_KERNEL = native.load("trades")
_TAKE_LINES = _KERNEL.take_lines if _KERNEL is not None else None

# Closed JSONL days are read in place through memory maps (see _mapped_chunks) on POSIX systems, by the
# compiled reader and the numpy one alike.  Windows reads them, as every other file, with read(): a file
# mapped there cannot be renamed or deleted (an exporter rolling its file) until the map is gone.
MAP_CLOSED_FILES = os.name == "posix"
_SEQUENTIAL = getattr(mmap, "MADV_SEQUENTIAL", None)


@dataclass(frozen=True)
class Cursor:
    """Position in an instrument's stream: ``offset`` bytes into ``file``, after ``line`` lines."""

    file: str | None = None
    offset: int = 0
    line: int | None = 0  # None only in the end of a chunk not yet numbered (LineNumbers)
    at_end: bool = False  # the offset was the whole file when this cursor was committed
    # the file's size and a digest of the bytes read from it, at the commit (see integrity.py); None in old states
    size: int | None = None
    digest: str | None = None

    def to_state(self) -> dict:
        out = {"file": self.file, "offset": self.offset, "line": self.line, "at_end": self.at_end}
        if self.digest is not None:
            out.update(size=self.size, digest=self.digest)
        return out

    @classmethod
    def from_state(cls, data: dict) -> "Cursor":
        size = data.get("size")
        return cls(data.get("file"), int(data.get("offset", 0)), int(data.get("line", 0)), bool(data.get("at_end")),
                   int(size) if size is not None else None, data.get("digest"))

    def same_place(self, other: "Cursor") -> bool:
        """The same position and end flag (what was read), whatever the size and digest recorded with it."""
        return (self.file, self.offset, self.line, self.at_end) == (other.file, other.offset, other.line, other.at_end)


@dataclass(frozen=True)
class TradeFile:
    name: str
    path: Path
    date: str
    fmt: Any  # its VenueFormat (sources.formats), or None for an input kind without venue formats
    # a file read to its end and since moved away (archived): it keeps its place in the order
    ghost: bool = False
    day_offset: int = 0  # minutes east of UTC at which the file's day starts (OKX archives: +480)
    compression: str | None = None  # "gz" or "zip": a closed day, read whole; offsets count decompressed bytes


@dataclass
class Chunk:
    """Complete lines of one trade file, and where the stream stands after them.

    A chunk of a memory-mapped day is not counted when it is read: its parse
    counts the lines as it walks them (one pass over the bytes, not two), and
    :class:`LineNumbers` numbers it, in stream order, once it is parsed.  Until
    then ``end.line`` is ``None``, and so is ``first_line`` unless it is its
    file's first chunk of the read.
    """

    file: TradeFile
    buf: bytes | memoryview  # complete lines, each ending in \n (a view of a mapped window: _mapped_chunks)
    first_line: int | None  # line number of the first line in buf (1-based); None: after the previous chunk's
    end: Cursor  # the cursor after this chunk (its line None until numbered)
    csv_columns: list[str | None] | None = None
    line_ends: np.ndarray | None = None  # offsets of the \n of each line in buf, if found here (else the parser does)
    lines: int | None = None  # how many lines buf holds, if counted here


class LineNumbers:
    """Numbers the chunks of one read in stream order, from what their parse counted (see :class:`Chunk`)."""

    def __init__(self) -> None:
        self.file: str | None = None
        self.line = 0  # the last line of the last chunk numbered, in its file

    def settle(self, chunk: Chunk, parsed: Any) -> None:
        """Give ``chunk`` its line numbers from its parse (a ``ParsedChunk``: its ``lines`` and ``rejects``).

        A chunk parsed without its first line number was numbered from 1;
        its rejects move to where its lines are in the file.
        """
        if chunk.end.line is None:
            first = chunk.first_line
            if first is None:
                if chunk.file.name != self.file:
                    raise AssertionError(f"{chunk.file.name}: a chunk without line numbers opens the read of its file")
                first = self.line + 1
                for r in parsed.rejects:
                    r.line += first - 1
                outside = getattr(parsed, "outside", None)  # the lines kept aside for their time move too
                if outside is not None:
                    outside.lines = outside.lines + (first - 1)
                chunk.first_line = first
            chunk.end = replace(chunk.end, line=first - 1 + parsed.lines)
        self.file, self.line = chunk.end.file, chunk.end.line


def _pattern_regex(pattern: str, inst_id: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{date\}|\{inst\})", pattern):
        if part == "{date}":
            out += r"(?P<date>\d{4}-\d{2}-\d{2})"
        elif part == "{inst}":
            out += re.escape(inst_id)
        else:
            out += re.escape(part)
    return re.compile(out + r"\Z")


def _classify(name: str, regexes: list[re.Pattern[str]]) -> tuple[str, int] | None:
    for k, rx in enumerate(regexes):
        m = rx.match(name)
        if m:
            try:
                datetime.date.fromisoformat(m.group("date"))
            except ValueError:
                continue  # not a day (2026-13-45): the name matches no pattern
            return m.group("date"), k
    return None


def _format(name: str, exchange: str, formats: FormatTable | None, kind: str) -> tuple[Any, str | None] | None:
    """``(venue format, compression)`` of a file by its exchange folder and name; ``None``: no format reads it.

    Without a table (an input kind whose files have no venue formats) every file is read, its format ``None``.
    """
    compression = next((how for ending, how in COMPRESSIONS.items() if name.endswith(ending)), None)
    if formats is None:
        return None, compression
    fmt = formats.match(exchange, name, kind)
    return (fmt, compression) if fmt is not None else None


def content_size(tf: TradeFile) -> int:
    """The bytes of the file's content: its size, or the decompressed size its archive records."""
    size = tf.path.stat().st_size
    try:
        if tf.compression == "gz" and size >= 18:
            with open(tf.path, "rb") as f:
                f.seek(-4, 2)
                return int.from_bytes(f.read(4), "little")  # ISIZE: the size mod 2**32 (an estimate)
        if tf.compression == "zip":
            with zipfile.ZipFile(tf.path) as z:
                return sum(i.file_size for i in z.infolist() if not i.is_dir())
    except (OSError, zipfile.BadZipFile):
        pass
    return size


def list_files(folder: Path, inst_id: str, patterns: list[str], cursors: list[Cursor] = (),
               day_offsets: dict[str, int] | None = None, formats: FormatTable | None = None,
               kind: str = "trades") -> list[TradeFile]:
    """The instrument's trade files in stream order: by date, then pattern order, then name.

    ``day_offsets`` gives, by pattern, the UTC offset in minutes at which the
    days of its files start (OKX's own archives: UTC+8); the default is UTC.
    With ``formats``, each file's venue format is the one its exchange folder
    (``folder``'s grandparent) and its name choose; a file no format reads is
    not listed (discovery reports it).

    A file that a cursor names but that is gone is kept as a *ghost* when the
    cursor had read it to its end (an archived old day): the stream goes on
    with the files after it.  A file gone half-read is an error: its rest would
    be lost silently.
    """
    regexes = [_pattern_regex(p, inst_id) for p in patterns]
    exchange = folder.parent.parent.name
    input_kind = kind

    def offset(pattern_index: int, fmt: Any) -> int:
        """The config's offset for the pattern, else the format's own, else UTC."""
        pattern = patterns[pattern_index]
        if day_offsets and pattern in day_offsets:
            return day_offsets[pattern]
        return dict(fmt.day_offsets).get(pattern, 0) if fmt is not None else 0

    found: dict[str, tuple[str, int, str, TradeFile]] = {}
    for path in folder.iterdir():
        if not path.is_file():
            continue
        kind = _classify(path.name, regexes)
        read_as = _format(path.name, exchange, formats, input_kind) if kind else None
        if kind and read_as is not None:
            fmt, compression = read_as
            found[path.name] = (*kind, path.name, TradeFile(path.name, path, kind[0], fmt, compression=compression,
                                                            day_offset=offset(kind[1], fmt)))
    for cur in cursors:
        if cur.file is None or cur.file in found:
            continue
        kind = _classify(cur.file, regexes)
        if not cur.at_end or kind is None:
            raise StateError(
                f"the saved cursor points into {folder / cur.file} (byte {cur.offset}), which is no longer "
                "there and had not been read to its end; put the file back, or rebuild with `indicators reset`"
            )
        fmt, compression = _format(cur.file, exchange, formats, input_kind) or (None, None)
        found[cur.file] = (*kind, cur.file, TradeFile(cur.file, folder / cur.file, kind[0], fmt, ghost=True,
                                                      day_offset=offset(kind[1], fmt), compression=compression))
    return [t[3] for t in sorted(found.values(), key=lambda t: t[:3])]


def at_end(files: list[TradeFile], cursor: Cursor) -> Cursor:
    """``cursor`` with ``at_end`` set from the file's size now (for committing it)."""
    if cursor.file is None:
        return cursor
    for f in files:
        if f.name == cursor.file:
            if f.compression:  # the reader marks the cursor that reached the end of the content
                done = f.ghost or cursor.at_end
            else:
                done = f.ghost or cursor.offset >= f.path.stat().st_size
            return Cursor(cursor.file, cursor.offset, cursor.line, done)
    return cursor


# names that operating systems and sync tools put in folders: never trade files, never listed
_IGNORED = {"thumbs.db", "desktop.ini", "__macosx"}


@dataclass(frozen=True)
class Skipped:
    """Something under the trades folder that is not read: its path (relative to the vault) and why."""

    path: str
    why: str


def _entries(folder: Path) -> list[tuple[Path, bool]]:
    """``(path, is a folder)`` of what ``folder`` holds, by name, without hidden and system names."""
    with os.scandir(folder) as it:
        found = [(Path(e.path), e.is_dir()) for e in it if not e.name.startswith(".") and e.name.lower() not in _IGNORED]
    return sorted(found)


def _any_inst_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as a regex whose ``{inst}`` matches any name (checked against the folder afterwards)."""
    out = ""
    for part in re.split(r"(\{date\}|\{inst\})", pattern):
        if part == "{date}":
            out += r"(?P<date>\d{4}-\d{2}-\d{2})"
        elif part == "{inst}":
            out += r"(?P<inst>.+)"
        else:
            out += re.escape(part)
    return re.compile(out + r"\Z")


def _matches(name: str, inst_id: str, regexes: list[re.Pattern[str]]) -> bool:
    for rx in regexes:
        m = rx.match(name)
        if m and m.groupdict().get("inst", inst_id) == inst_id:
            try:
                datetime.date.fromisoformat(m.group("date"))
            except ValueError:
                continue
            return True
    return False


def discover(vault: Path, root: str, only: list[str] | None, patterns: list[str] | None = None,
             skipped: list[Skipped] | None = None, formats: FormatTable | None = None,
             kind: str = "trades") -> list[tuple[InstrumentKey, Path]]:
    """Instrument folders under ``{vault}/{root}/{exchange}/{market}/{INST_ID}/``.

    With ``patterns``, an instrument folder is one holding at least one file
    that matches a pattern, or one with a saved state; what is not read -- files matching no pattern,
    files and folders at another depth, folders whose name is not an id
    (``old backup``) -- is appended to ``skipped``, not refused.  With ``formats``, an exchange folder
    that no installed venue format reads, and a file that none of its exchange's formats reads, are
    not read either (and said so).
    """
    base = vault / root
    if not base.is_dir():
        raise ConfigError(
            f"no trades folder at {base}: put trade files in {base}/{{exchange}}/{{market}}/{{INST_ID}}/ "
            "(e.g. okx/perps/BTC-USDT-SWAP/trades_2026-11-23.jsonl), or set [input] root in the config"
        )
    out = []
    skip: list[Skipped] = skipped if skipped is not None else []

    def note(path: Path, is_dir: bool, why: str) -> None:
        label = path.relative_to(vault).as_posix() if path.is_relative_to(vault) else path.as_posix()
        skip.append(Skipped(label + ("/" if is_dir else ""), why))

    def level(folder: Path, what: str) -> list[Path]:
        folders = []
        for p, is_dir in _entries(folder):
            if not is_dir:
                note(p, False, f"a file where {what} folders belong")
            elif not FOLDER_NAME.fullmatch(p.name):
                note(p, True, f"not a valid {what} folder name (letters, digits, '.', '_', '-')")
            else:
                folders.append(p)
        return folders

    regexes = [_any_inst_regex(p) for p in patterns or ()]

    for ex in level(base, "exchange"):
        if formats is not None and not formats.of(ex.name, kind):
            note(ex, True, formats.describe(ex.name, kind))
            continue
        for mk in level(ex, "market"):
            for inst in level(mk, "instrument"):
                if only and inst.name not in only:
                    continue
                if patterns is None or only:
                    out.append((InstrumentKey(ex.name, mk.name, inst.name), inst))
                    continue
                found = False
                odd: list[tuple[Path, bool, str]] = []
                with os.scandir(inst) as it:
                    for e in it:
                        if e.name.startswith(".") or e.name.lower() in _IGNORED:
                            continue
                        if e.is_dir():
                            odd.append((inst / e.name, True,
                                        "a folder inside an instrument folder (trade files go directly in it)"))
                        elif _matches(e.name, inst.name, regexes):
                            if formats is None or formats.match(ex.name, e.name, kind) is not None:
                                found = True
                            else:
                                odd.append((inst / e.name, False, "no venue format reads this file name: "
                                            + formats.describe(ex.name, kind)))
                        else:
                            odd.append((inst / e.name, False, "matches no file pattern"))
                odd.sort()
                key = InstrumentKey(ex.name, mk.name, inst.name)
                if found or state_path(vault, "quality", key).exists():  # files, or files read before
                    out.append((key, inst))
                for p, is_dir, why in odd:
                    note(p, is_dir, why)
    if only:
        missing = sorted(set(only) - {k.inst_id for k, _ in out})
        if missing:
            raise ConfigError(f"--inst {missing[0]}: no folder of that name under {base}/{{exchange}}/{{market}}/")
    return out


def describe_skipped(skipped: list[Skipped], patterns: list[str], root: str, limit: int = 10) -> str:
    """A short message listing what discovery did not read, and the layout and names it expects."""
    lines = [f"not read ({len(skipped)} under {root}/):"]
    for s in skipped[:limit]:
        lines.append(f"  {s.path}: {s.why}")
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    lines.append(
        f"  trade files go in {root}/{{exchange}}/{{market}}/{{INST_ID}}/ named "
        + ", ".join(patterns) + " ({date} is YYYY-MM-DD); [input] patterns in the config adds others"
    )
    return "\n".join(lines)


def position(files: list[TradeFile], cursor: Cursor) -> tuple[int, int]:
    """``(file index, offset)`` of ``cursor`` in ``files``, for ordering cursors."""
    if cursor.file is None:
        return (0, 0)
    for k, f in enumerate(files):
        if f.name == cursor.file:
            return (k, cursor.offset)
    raise StateError(
        f"the saved cursor points into {cursor.file}, which is no longer in the instrument's folder; "
        "put the file back, or rebuild with `indicators reset`"
    )


def remaining_bytes(files: list[TradeFile], cursor: Cursor) -> int:
    k, off = position(files, cursor)
    total = 0
    for j in range(k, len(files)):
        if files[j].ghost:
            continue
        size = content_size(files[j])
        total += max(size - (off if j == k else 0), 0)
    return total


def _read_header(f, name: str) -> tuple[bytes, int] | None:
    line = f.readline()
    if not line.endswith(b"\n"):
        return None
    return line, len(line)


def read_chunks(
    files: list[TradeFile], start: Cursor, stop: Cursor | None, batch_bytes: int, mapped: bool = False
) -> Iterator[Chunk]:
    """Chunks of complete lines from ``start`` up to ``stop`` (exclusive end position) or the end.

    With ``mapped`` (a parser that reads views and counts the lines it reads, numbered by
    :class:`LineNumbers`), closed JSONL days come as views of memory maps (:func:`_mapped_chunks`, where
    :data:`MAP_CLOSED_FILES` allows it), and chunks read without the compiled kernel are not counted here;
    otherwise every chunk is ``bytes`` with its count.
    """
    k0, off0 = position(files, start)
    k_stop, off_stop = position(files, stop) if stop is not None else (len(files), 0)
    for k in range(k0, len(files)):
        if k > k_stop or (k == k_stop and stop is not None and off_stop == 0 and k != k0):
            return
        tf = files[k]
        if tf.ghost:  # read to its end before it was moved away
            if k == k_stop:
                return
            continue
        offset = off0 if k == k0 else 0
        line = start.line if (k == k0 and start.file is not None) else 0
        has_later = k + 1 < len(files)
        limit = off_stop if k == k_stop else None
        if tf.compression:
            if k == k0 and start.file == tf.name and start.at_end:
                continue  # a closed day read to its end: nothing new in it
            yield from _compressed_chunks(tf, offset, line, limit, batch_bytes)
            if limit is not None:
                return
            continue
        with open(tf.path, "rb") as f:
            columns = None
            header = tf.fmt.header if tf.fmt is not None else None
            if header is not None:
                hdr = _read_header(f, tf.name)
                if hdr is None:
                    return  # header still being written
                columns = header(hdr[0], str(tf.path))
                if offset == 0:
                    offset, line = hdr[1], 1
            if mapped and MAP_CLOSED_FILES and has_later and limit is None and tf.fmt is not None and tf.fmt.reads_mapped:
                mapped_from, mapped_line = offset, line
                for chunk in _mapped_chunks(f, tf, offset, line, batch_bytes):
                    yield chunk
                    offset = chunk.end.offset
                if offset != mapped_from:  # the lines the mapped chunks hold are counted as they are parsed
                    if offset >= os.fstat(f.fileno()).st_size:
                        continue
                    line = mapped_line + _lines_between(f, mapped_from, offset)  # the rare read on from a mapped run
            f.seek(offset)
            # with the kernel: read into one buffer again and again, and copy out each chunk's complete lines
            # without the GIL (a copy of 4 MiB into new memory, page faults included, is one long C call: a
            # reader thread doing it with the GIL would stall the pass's main thread for its whole length)
            scratch = bytearray(batch_bytes) if _TAKE_LINES is not None else None
            # without the kernel, a parser that counts the lines it reads (a format that reads mapped windows)
            # numbers the chunks (LineNumbers) instead of a count of every chunk here first
            parse_counts = mapped and scratch is None and tf.fmt is not None and tf.fmt.reads_mapped
            while True:
                want = batch_bytes if limit is None else min(batch_bytes, limit - offset)
                if want <= 0:
                    return
                if scratch is not None and want <= len(scratch):
                    got = f.readinto(memoryview(scratch)[:want])
                    if not got:
                        break
                    taken = _TAKE_LINES(scratch, got)
                    if taken is not None:
                        buf, n = taken
                        f.seek(offset + len(buf))
                        first = line + 1
                        offset += len(buf)
                        line += n
                        yield Chunk(tf, buf, first, Cursor(tf.name, offset, line), columns, None, n)
                        continue
                    data = bytes(scratch[:got])  # no line end in it: the rare paths below
                else:
                    data = f.read(want)
                    if not data:
                        break
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than the batch, or a last line with no \n yet
                    data += f.readline()
                    cut = data.rfind(b"\n") + 1
                if cut == 0:
                    # the end of the file without a line end: complete only if a later file exists (and read up
                    # to a stop there too: a consumer that committed after that last line waits at its end)
                    if has_later and (limit is None or offset + len(data) <= limit):
                        offset += len(data)
                        buf = data + b"\n"
                        first, line = (line + 1, line + 1) if line is not None else (None, None)
                        yield Chunk(tf, buf, first, Cursor(tf.name, offset, line), columns, line_ends(buf))
                    break
                buf = data[:cut]
                f.seek(offset + cut)
                first = line + 1 if line is not None else None
                offset += cut
                if parse_counts:
                    line = None  # from here on numbered by LineNumbers
                    yield Chunk(tf, buf, first, Cursor(tf.name, offset, None), columns, None, None)
                    continue
                n = count_lines(buf)
                line += n
                yield Chunk(tf, buf, first, Cursor(tf.name, offset, line), columns, None, n)
        if limit is not None:
            return


def _mapped_chunks(f: IO[bytes], tf: TradeFile, offset: int, line: int, batch_bytes: int) -> Iterator[Chunk]:
    """The complete lines of a closed file from ``offset`` on, each chunk a view of its own memory map.

    A closed day (a later file of the instrument exists) no longer grows, so its size is known and the
    lines are read where the page cache holds them: no read() into a buffer, no copy of the lines out of
    it.  Each chunk maps its own window and the window is unmapped once nothing holds the chunk, so the
    memory a pass maps stays that of the chunks in flight, not the file's size.  Stops where a line is
    longer than a chunk, at a last line without its line end, or where the file system refuses to map
    the file: ``read_chunks`` reads on from there.
    """
    end = os.fstat(f.fileno()).st_size
    grain = mmap.ALLOCATIONGRANULARITY
    first: int | None = line + 1
    while offset < end:
        want = min(batch_bytes, end - offset)
        base = offset - offset % grain
        lo = offset - base
        try:
            window = mmap.mmap(f.fileno(), lo + want, offset=base, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system that cannot map files (some network or FUSE mounts)
            return
        if _SEQUENTIAL is not None:
            window.madvise(_SEQUENTIAL)  # read-ahead as read() would have it, for days not in the page cache
        cut = window.rfind(b"\n", lo, lo + want) + 1
        if cut == 0:
            return
        buf = memoryview(window)[lo:cut]
        offset += cut - lo
        yield Chunk(tf, buf, first, Cursor(tf.name, offset, None), None, None, None)  # counted by its parse
        first = None


def _lines_between(f: IO[bytes], start: int, stop: int) -> int:
    """How many lines the bytes ``start .. stop`` of ``f`` end (they end with one), read in pieces."""
    f.seek(start)
    n = 0
    while start < stop:
        piece = f.read(min(stop - start, 1 << 22))
        if not piece:
            break
        n += count_lines(piece)
        start += len(piece)
    return n


def _open_content(tf: TradeFile, stack: ExitStack) -> tuple[IO[bytes], TradeFile]:
    """The decompressed content of a ``.gz`` or ``.zip`` trade file (its format is the archive's)."""
    if tf.compression == "gz":
        return stack.enter_context(gzip.open(tf.path, "rb")), tf
    z = stack.enter_context(zipfile.ZipFile(tf.path))
    members = [i for i in z.infolist() if not i.is_dir() and i.filename.endswith((".csv", ".jsonl"))]
    if len(members) != 1:
        raise IndicatorError(
            f"{tf.path}: a trade archive must hold exactly one .csv or .jsonl file (the venues' daily archives "
            f"hold one, e.g. OKX's {{INST}}-trades-{{date}}.csv); it holds {[i.filename for i in z.infolist()]}"
        )
    return stack.enter_context(z.open(members[0])), tf


def _read_full(f: IO[bytes], n: int) -> bytes:
    """``n`` bytes, fewer only at the end of the content."""
    parts, got = [], 0
    while got < n:
        data = f.read(n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _compressed_chunks(tf: TradeFile, offset: int, line: int, limit: int | None,
                       batch_bytes: int) -> Iterator[Chunk]:
    """Chunks of a compressed closed day: its content is the file, read forward only.

    The content is complete by definition, so its last line is read even
    without a line end.  A file that cannot be decompressed to its end (still
    being downloaded, or damaged) stops the instrument with a message; the
    lines before the damage may have been read, which is the same as reading
    that prefix of a plain file.
    """
    try:
        with ExitStack() as stack:
            f, tf = _open_content(tf, stack)
            columns = None
            header = tf.fmt.header if tf.fmt is not None else None
            if header is not None:
                hdr = f.readline()
                columns = header(hdr.rstrip(b"\n") + b"\n", str(tf.path))
                if offset == 0:
                    offset, line = len(hdr), 1
                else:
                    _read_full(f, offset - len(hdr))
            elif offset:
                _read_full(f, offset)  # forward: decompress and drop what was read before
            pending = b""
            while True:
                room = batch_bytes
                if limit is not None:
                    room = min(room, limit - offset - len(pending))
                data = _read_full(f, room) if room > 0 else b""
                end = room > 0 and len(data) < room  # the content ended
                buf = pending + data
                if not buf:
                    if end:  # the content ended on a chunk boundary: say so in the cursor
                        yield Chunk(tf, b"", line + 1, Cursor(tf.name, offset, line, True), columns, line_ends(b""))
                    return
                if end:
                    if not buf.endswith(b"\n"):
                        buf += b"\n"
                        offset -= 1  # the added line end is not in the content
                    pending = b""
                elif limit is not None and offset + len(buf) >= limit:
                    pending = b""
                else:
                    cut = buf.rfind(b"\n") + 1
                    if cut == 0:  # a line longer than the batch: read on
                        pending = buf
                        continue
                    buf, pending = buf[:cut], buf[cut:]
                first = line + 1
                offset += len(buf)
                n = count_lines(buf)
                line += n
                yield Chunk(tf, buf, first, Cursor(tf.name, offset, line, end), columns, None, n)
                if end or (limit is not None and offset >= limit):
                    return
    except (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile) as exc:
        raise IndicatorError(
            f"{tf.path}: cannot be read to its end ({exc}). If it is still being downloaded or copied, run "
            "again once it is complete; otherwise replace it with a good copy or move it away"
        ) from exc
