"""The recorder's raw files: whole lines appended to the day files of the vault's layout.

``{root}/{exchange}/{market}/{SYMBOL}/{kind}_{YYYY-MM-DD}.jsonl`` with the roots
of the config (``[input]``, ``[books]``, ``[derivs]``), the day that of the push's
own time (UTC).  A line goes to the operating system in one write, with its
``\\n``, the moment it is received; the files are fsynced at least every
``fsync_seconds``.  A file whose last line was cut by a crash (no ``\\n`` at the
end) is cut back to its last whole line when the recorder opens it again, so a
reader never meets a line it would reject.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

import orjson

DAY_FILE = re.compile(r"(trades|books|derivs)_(\d{4}-\d{2}-\d{2})\.jsonl")
DAY_MS = 86_400_000
_DAYS: dict[int, str] = {}


def iso_day(ms: int) -> str:
    """``YYYY-MM-DD`` of the UTC day of ``ms``."""
    n = ms // DAY_MS
    day = _DAYS.get(n)
    if day is None:
        day = _DAYS[n] = time.strftime("%Y-%m-%d", time.gmtime(n * 86_400))
    return day


def cut_torn_tail(path: Path) -> int:
    """Cut ``path`` back to its last ``\\n`` if it does not end with one; the bytes dropped."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "r+b") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        keep, block = size, 1 << 16
        while keep > 0:  # the last '\n', read backwards a block at a time
            start = max(0, keep - block)
            f.seek(start)
            chunk = f.read(keep - start)
            at = chunk.rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            keep = start
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep


class RawFiles:
    """Open day files by (kind, instrument label, day); each append is one whole line."""

    def __init__(self, vault: Path, roots: dict[str, str], fsync_seconds: float,
                 on_repair: Callable[[str, Path, int], None] | None = None) -> None:
        self.vault = vault
        self.roots = roots  # kind -> root relative to the vault
        self.fsync_seconds = fsync_seconds
        self.on_repair = on_repair
        self._open: dict[tuple[str, str], tuple[str, BinaryIO]] = {}  # (kind, label) -> (day, file)
        self._dirty: set[tuple[str, str]] = set()
        self._last_sync = time.monotonic()
        self.lines = 0
        self.bytes = 0

    def folder(self, kind: str, label: str) -> Path:
        return self.vault / self.roots[kind] / label

    def path(self, kind: str, label: str, day: str) -> Path:
        return self.folder(kind, label) / f"{kind}_{day}.jsonl"

    def append(self, kind: str, label: str, ms: int | None, line: bytes) -> None:
        """Write ``line`` (without its ``\\n``) to the file of the UTC day of ``ms`` (now, when unknown)."""
        day = iso_day(ms if ms is not None else int(time.time() * 1000))
        key = (kind, label)
        held = self._open.get(key)
        if held is None or held[0] != day:
            if held is not None and day < held[0]:  # a push of the day before, after midnight: its own day's file
                self._write_other_day(kind, label, day, line)
                return
            f = self._open_file(kind, label, day)
            if held is not None:
                held[1].flush()
                os.fsync(held[1].fileno())
                held[1].close()
            self._open[key] = held = (day, f)
        f = held[1]
        f.write(line + b"\n")  # unbuffered: one write of the whole line
        self._dirty.add(key)
        self.lines += 1
        self.bytes += len(line) + 1

    def _write_other_day(self, kind: str, label: str, day: str, line: bytes) -> None:
        with self._open_file(kind, label, day) as f:
            f.write(line + b"\n")
            os.fsync(f.fileno())
        self.lines += 1
        self.bytes += len(line) + 1

    def _open_file(self, kind: str, label: str, day: str) -> BinaryIO:
        path = self.path(kind, label, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        dropped = cut_torn_tail(path)
        if dropped and self.on_repair is not None:
            self.on_repair(label, path, dropped)
        return open(path, "ab", buffering=0)

    def maybe_sync(self, now: float | None = None) -> bool:
        """fsync the files written since the last one, if ``fsync_seconds`` have passed."""
        now = time.monotonic() if now is None else now
        if now - self._last_sync < self.fsync_seconds:
            return False
        self.sync()
        return True

    def sync(self) -> None:
        for key in self._dirty:
            held = self._open.get(key)
            if held is not None:
                os.fsync(held[1].fileno())
        self._dirty.clear()
        self._last_sync = time.monotonic()

    def close(self) -> None:
        self.sync()
        for _, f in self._open.values():
            f.close()
        self._open.clear()


def last_trade(folder: Path, read_id: Callable[[bytes], tuple[int, int] | None]) -> tuple[int, int] | None:
    """The last trade id (and its time) recorded in ``folder``: read back from the end of its newest day file
    that has one (``read_id`` gives a line's largest ``(id, ts)``, or None)."""
    days = sorted((m.group(2), p) for p in folder.glob("trades_*.jsonl") if (m := DAY_FILE.fullmatch(p.name)))
    for _, path in reversed(days):
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block = 1 << 16
            while True:
                start = max(0, size - block)
                f.seek(start)
                tail = f.read(size - start)
                lines = tail.split(b"\n")
                if start > 0:
                    lines = lines[1:]  # the first may be cut by the block's start
                best = None
                for line in lines:
                    got = read_id(line) if line.strip() else None
                    if got is not None and (best is None or got[0] > best[0]):
                        best = got
                if best is not None:
                    return best
                if start == 0:
                    break
                block *= 4
    return None


def _largest_id(line: bytes, items: Callable[[Any], list[Any]], id_key: str, ts_key: str) -> tuple[int, int] | None:
    """The largest ``(id, ts)`` among the trade records ``items`` finds in a line's JSON, or None."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    best = None
    for d in items(doc):
        try:
            got = (int(d[id_key]), int(d[ts_key]))
        except (KeyError, TypeError, ValueError):
            continue
        if best is None or got > best:
            best = got
    return best


def okx_trade_id(line: bytes) -> tuple[int, int] | None:
    """The largest ``(tradeId, ts)`` of an OKX push or REST item line."""
    return _largest_id(line, lambda doc: doc["data"] if isinstance(doc, dict) and isinstance(doc.get("data"), list)
                       else [doc], "tradeId", "ts")


def binance_trade_id(line: bytes) -> tuple[int, int] | None:
    """``(a, T)`` of a Binance aggTrade line, bare or wrapped."""
    return _largest_id(line, lambda doc: [doc.get("data", doc)] if isinstance(doc, dict) else [], "a", "T")


TRADE_ID_READERS: dict[str, Callable[[bytes], tuple[int, int] | None]] = {"okx": okx_trade_id,
                                                                           "binance": binance_trade_id}


def utc_now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["RawFiles", "cut_torn_tail", "last_trade", "TRADE_ID_READERS", "utc_now_ms", "iso_day"]
