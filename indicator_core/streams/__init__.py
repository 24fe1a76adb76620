"""The kinds of input stream, one module each: ``trades`` and ``books``.

A kind says where its raw files are, how a chunk of their lines is parsed,
which stream object turns parsed lines into events, which indicators it
feeds (an indicator's ``consumes``) and which data-quality log it keeps.  The
engine drives every kind the same way (files, cursors, chunks, commits), so
a new kind of input is one new module here and one entry in :data:`KINDS`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..sources.files import discover
from ..storage import InstrumentKey
from .base import StreamKind
from .books import BOOKS
from .trades import TRADES

KINDS: dict[str, StreamKind] = {k.name: k for k in (TRADES, BOOKS)}

__all__ = ["KINDS", "StreamKind", "discover_all"]


def discover_all(vault: Path, cfg, only: list[str] | None,
                 skipped: list | None = None) -> list[tuple[InstrumentKey, StreamKind, Path]]:
    """Every ``(instrument, kind, folder)`` under the vault, by instrument then kind.

    An instrument may have trades only, books only, or both.  With no folder
    of any kind, the message is the one of the trades folder (the main input).
    """
    found: list[tuple[InstrumentKey, StreamKind, Path]] = []
    roots = []
    order = list(KINDS)
    for kind in KINDS.values():
        root = kind.root(cfg)
        roots.append(vault / root)
        if (vault / root).is_dir():
            # with --inst, every named folder (as for trades alone); else those holding files of the kind
            patterns = None if only else kind.patterns(cfg)
            found += [(key, kind, folder) for key, folder in discover(vault, root, None, patterns, skipped)]
    if not any(r.is_dir() for r in roots):
        discover(vault, TRADES.root(cfg), only, TRADES.patterns(cfg), skipped)  # raises the trades folder's message
    if only:
        found = [t for t in found if t[0].inst_id in only]
        missing = sorted(set(only) - {k.inst_id for k, _, _ in found})
        if missing:
            raise ConfigError(
                f"--inst {missing[0]}: no folder of that name under "
                + " or ".join(f"{r}/{{exchange}}/{{market}}/" for r in roots)
            )
    found.sort(key=lambda t: (t[0].exchange, t[0].market, t[0].inst_id, order.index(t[1].name)))
    return found
