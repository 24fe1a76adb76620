"""Finding an instrument's trade files and reading them as one stream of chunks.

Files of one instrument are read in date order as one continuous stream
(SPEC section 9).  A *cursor* names a position in that stream: the file and
the byte offset just after the last consumed line.  Chunks always end on a
line end, so a partial last line (a writer still appending) is never
consumed; the last line of a file without its ``\\n`` is consumed only once a
later file of the instrument exists, because only then is it known complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import ConfigError, StateError
from ..storage import InstrumentKey
from .parsed import line_ends


@dataclass(frozen=True)
class Cursor:
    """Position in an instrument's stream: ``offset`` bytes into ``file``, after ``line`` lines."""

    file: str | None = None
    offset: int = 0
    line: int = 0
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
    fmt: str  # "jsonl" or "csv"
    # a file read to its end and since moved away (archived): it keeps its place in the order
    ghost: bool = False


@dataclass
class Chunk:
    file: TradeFile
    buf: bytes  # complete lines, each ending in \n
    first_line: int  # line number of the first line in buf (1-based)
    end: Cursor  # the cursor after this chunk
    csv_columns: list[str | None] | None = None
    line_ends: np.ndarray | None = None  # offsets of the \n of each line in buf (found once, here)


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
            return m.group("date"), k
    return None


def list_files(folder: Path, inst_id: str, patterns: list[str], cursors: list[Cursor] = ()) -> list[TradeFile]:
    """The instrument's trade files in stream order: by date, then pattern order, then name.

    A file that a cursor names but that is gone is kept as a *ghost* when the
    cursor had read it to its end (an archived old day): the stream goes on
    with the files after it.  A file gone half-read is an error: its rest would
    be lost silently.
    """
    regexes = [_pattern_regex(p, inst_id) for p in patterns]
    found: dict[str, tuple[str, int, str, TradeFile]] = {}
    for path in folder.iterdir():
        if not path.is_file():
            continue
        kind = _classify(path.name, regexes)
        if kind:
            fmt = "csv" if path.name.endswith(".csv") else "jsonl"
            found[path.name] = (*kind, path.name, TradeFile(path.name, path, kind[0], fmt))
    for cur in cursors:
        if cur.file is None or cur.file in found:
            continue
        kind = _classify(cur.file, regexes)
        if not cur.at_end or kind is None:
            raise StateError(
                f"the saved cursor points into {folder / cur.file} (byte {cur.offset}), which is no longer "
                "there and had not been read to its end; put the file back, or rebuild with `indicators reset`"
            )
        fmt = "csv" if cur.file.endswith(".csv") else "jsonl"
        found[cur.file] = (*kind, cur.file, TradeFile(cur.file, folder / cur.file, kind[0], fmt, ghost=True))
    return [t[3] for t in sorted(found.values(), key=lambda t: t[:3])]


def at_end(files: list[TradeFile], cursor: Cursor) -> Cursor:
    """``cursor`` with ``at_end`` set from the file's size now (for committing it)."""
    if cursor.file is None:
        return cursor
    for f in files:
        if f.name == cursor.file:
            done = f.ghost or cursor.offset >= f.path.stat().st_size
            return Cursor(cursor.file, cursor.offset, cursor.line, done)
    return cursor


def discover(vault: Path, root: str, only: list[str] | None) -> list[tuple[InstrumentKey, Path]]:
    """Instrument folders under ``{vault}/{root}/{exchange}/{market}/{INST_ID}/``."""
    base = vault / root
    if not base.is_dir():
        raise ConfigError(
            f"no trades folder at {base}: put trade files in {base}/{{exchange}}/{{market}}/{{INST_ID}}/ "
            "(e.g. okx/perps/BTC-USDT-SWAP/trades_2026-11-23.jsonl), or set [input] root in the config"
        )
    out = []
    for ex in sorted(p for p in base.iterdir() if p.is_dir()):
        for mk in sorted(p for p in ex.iterdir() if p.is_dir()):
            for inst in sorted(p for p in mk.iterdir() if p.is_dir()):
                if only and inst.name not in only:
                    continue
                out.append((InstrumentKey(ex.name, mk.name, inst.name), inst))
    if only:
        missing = sorted(set(only) - {k.inst_id for k, _ in out})
        if missing:
            raise ConfigError(f"--inst {missing[0]}: no folder of that name under {base}/{{exchange}}/{{market}}/")
    return out


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
        size = files[j].path.stat().st_size
        total += max(size - (off if j == k else 0), 0)
    return total


def _read_header(f, name: str) -> tuple[bytes, int] | None:
    line = f.readline()
    if not line.endswith(b"\n"):
        return None
    return line, len(line)


def read_chunks(
    files: list[TradeFile], start: Cursor, stop: Cursor | None, batch_bytes: int
) -> Iterator[Chunk]:
    """Chunks of complete lines from ``start`` up to ``stop`` (exclusive end position) or the end."""
    from .okx_csv import parse_header

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
        with open(tf.path, "rb") as f:
            columns = None
            if tf.fmt == "csv":
                hdr = _read_header(f, tf.name)
                if hdr is None:
                    return  # header still being written
                columns = parse_header(hdr[0], str(tf.path))
                if offset == 0:
                    offset, line = hdr[1], 1
            f.seek(offset)
            while True:
                want = batch_bytes if limit is None else min(batch_bytes, limit - offset)
                if want <= 0:
                    return
                data = f.read(want)
                if not data:
                    break
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # a line longer than the batch, or a last line with no \n yet
                    data += f.readline()
                    cut = data.rfind(b"\n") + 1
                if cut == 0:
                    # the end of the file without a line end: complete only if a later file exists
                    if has_later and limit is None:
                        offset += len(data)
                        line += 1
                        buf = data + b"\n"
                        yield Chunk(tf, buf, line, Cursor(tf.name, offset, line), columns, line_ends(buf))
                    break
                buf = data[:cut]
                f.seek(offset + cut)
                first = line + 1
                offset += cut
                ends = line_ends(buf)
                line += len(ends)
                yield Chunk(tf, buf, first, Cursor(tf.name, offset, line), columns, ends)
        if limit is not None:
            return
