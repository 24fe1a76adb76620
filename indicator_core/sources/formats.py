"""Venue formats: which parser reads a raw file, chosen by its ``{exchange}`` folder and its name.

A :class:`VenueFormat` is registered for one exchange folder of the vault
layout (``raw/trades/{exchange}/{market}/{INST_ID}/``) and the file-name
endings it reads (``.jsonl``, ``.csv``, ``.csv.gz``, ``.zip``).  The built-in
ones (OKX, Binance USDⓈ-M, Bybit v5) are registered through the same
``register_venue_formats`` hook a plugin uses (:mod:`indicator_core.builtin_formats`),
so a new venue is one module and one registration.  A file in an exchange
folder that no installed format reads is not guessed at: it is reported as not
read, with the formats that are installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .files import Chunk
    from .parsed import ParsedChunk
    from .timecheck import TimeWindow

COMPRESSIONS = {".gz": "gz", ".zip": "zip"}


@dataclass(frozen=True, eq=False)
class VenueFormat:
    """How one venue's files of one input kind are read.

    ``parse(chunk, inst_id, window)`` turns a chunk of complete lines into the
    columns of a :class:`~.parsed.ParsedChunk` (it may run in a helper thread:
    a pure function of its arguments); that is a trade format's, the kind
    decides what its formats' ``parse`` takes and gives (a book format's takes
    the book channel and gives the parsed pushes).  ``header(line, path)``, if given,
    reads the file's first line (a CSV header) into ``chunk.csv_columns``;
    ``reads_mapped`` says the parser reads a view of a memory-mapped window
    in place.  Trade ids that are not integers (Bybit) come as
    ``ParsedChunk.keys``: the stream then judges duplicates by id near each
    trade's minute and never judges gaps.
    """

    name: str  # e.g. "okx-jsonl": unique among the installed formats
    exchange: str  # the {exchange} folder it reads
    suffixes: tuple[str, ...]  # the file-name endings it reads, e.g. (".jsonl", ".jsonl.gz")
    parse: Callable[["Chunk", str, "TimeWindow"], "ParsedChunk"]
    header: Callable[[bytes, str], Any] | None = None
    reads_mapped: bool = False
    description: str = ""  # one line for `indicators plugins`
    kind: str = "trades"  # the input kind whose files it reads
    # the UTC offset in minutes at which the days of its files start, by file pattern (OKX's own archives: +480);
    # a pattern in the config's [input] day_offsets wins
    day_offsets: tuple[tuple[str, int], ...] = ()

    def compression(self, name: str) -> str | None:
        """``"gz"``, ``"zip"`` or ``None``: how a file of this format named ``name`` is packed."""
        for ending, how in COMPRESSIONS.items():
            if name.endswith(ending):
                return how
        return None

    def __repr__(self) -> str:
        return f"VenueFormat({self.name!r})"


class FormatTable:
    """The installed formats, by exchange folder; a file's format is the one whose ending is the longest match."""

    def __init__(self, formats: Iterable[VenueFormat] = ()) -> None:
        self.formats: dict[str, VenueFormat] = {}
        for f in formats:
            self.add(f)

    def add(self, fmt: VenueFormat) -> None:
        if fmt.name in self.formats:
            raise ConfigError(f"venue format {fmt.name!r} is registered twice; uninstall one of its plugins")
        for other in self.formats.values():
            clash = set(other.suffixes) & set(fmt.suffixes)
            if other.exchange == fmt.exchange and other.kind == fmt.kind and clash:
                raise ConfigError(f"venue formats {other.name!r} and {fmt.name!r} both read {sorted(clash)[0]} files of "
                                  f"{fmt.exchange!r}; uninstall one of their plugins")
        self.formats[fmt.name] = fmt

    def exchanges(self, kind: str = "trades") -> list[str]:
        return sorted({f.exchange for f in self.formats.values() if f.kind == kind})

    def of(self, exchange: str, kind: str = "trades") -> list[VenueFormat]:
        return [f for f in self.formats.values() if f.exchange == exchange and f.kind == kind]

    def match(self, exchange: str, name: str, kind: str = "trades") -> VenueFormat | None:
        """The format that reads a file ``name`` in the ``exchange`` folder, or ``None``."""
        best: tuple[int, VenueFormat] | None = None
        for f in self.of(exchange, kind):
            for ending in f.suffixes:
                if name.endswith(ending) and (best is None or len(ending) > best[0]):
                    best = (len(ending), f)
        return best[1] if best else None

    def describe(self, exchange: str, kind: str = "trades") -> str:
        """What the formats of ``exchange`` read, or which exchanges have formats (for messages)."""
        mine = self.of(exchange, kind)
        if mine:
            return f"the {exchange} formats read " + ", ".join(e for f in mine for e in f.suffixes) + " files"
        return (f"no installed venue format reads {kind} files of {exchange!r}; installed: "
                + ", ".join(self.exchanges(kind)) + " (`indicators plugins` lists them)")
