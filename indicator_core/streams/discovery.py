"""Finding every instrument's input folders under a vault, of every kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..sources.files import Skipped, discover
from ..sources.formats import FormatTable
from ..storage import InstrumentKey
from .base import StreamKind


def discover_all(vault: Path, cfg: Any, kinds: Mapping[str, StreamKind], only: list[str] | None,
                 skipped: list[Skipped] | None = None,
                 formats: FormatTable | None = None) -> list[tuple[InstrumentKey, StreamKind, Path]]:
    """Every ``(instrument, kind, folder)`` under the vault, by instrument then kind (in ``kinds``' order).

    An instrument may have files of one kind or of several.  With no folder
    of any kind, the message is the one of the first kind (the main input).
    """
    found: list[tuple[InstrumentKey, StreamKind, Path]] = []
    roots = []
    order = list(kinds)
    kinds = {name: k for name, k in kinds.items() if k.reads_files}  # the others have no folder under raw/
    for kind in kinds.values():
        root = kind.root(cfg)
        roots.append(vault / root)
        if (vault / root).is_dir():
            # with --inst, every named folder (as for one kind alone); else those holding files of the kind
            patterns = None if only else kind.patterns(cfg)
            table = formats if kind.venue_formats else None
            found += [(key, kind, folder) for key, folder in discover(vault, root, None, patterns, skipped, table,
                                                                      kind.name)]
    if not any(r.is_dir() for r in roots):
        main = next(iter(kinds.values()))
        discover(vault, main.root(cfg), only, main.patterns(cfg), skipped)  # raises the main folder's message
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
