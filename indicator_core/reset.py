"""``indicators reset``: delete an indicator's own outputs and state, nothing else.

Every name given is checked before anything is touched: an indicator must be
installed (or be ``quality``, the built-in data-quality log, or ``all``), an
instrument must exist in the vault.  What is deleted is only ever

* ``state/{indicator}/{exchange}/{market}/{INST_ID}.state.json`` (and its
  ``.tmp`` left by an interrupted commit; for ``quality`` also the other
  input kinds' ``{INST_ID}{suffix}.state.json``, e.g. the book stream's
  ``{INST_ID}.books.state.json``), and
* the ``*.jsonl`` files of ``derived/{indicator}/{exchange}/{market}/{INST_ID}/``
  (the folder too once it is empty),

each a regular file (never a link) that lies inside the vault's
``state/{indicator}`` or ``derived/{indicator}`` folder.  The state file goes
first: a reset stopped half-way leaves outputs without a state, which the next
run cuts back to nothing, as it does for any uncommitted tail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

QUALITY = "quality"


@dataclass
class ResetPlan:
    indicators: list[str]
    files: list[Path] = field(default_factory=list)  # in deletion order: state files first
    folders: list[Path] = field(default_factory=list)  # removed when empty afterwards
    kept: list[Path] = field(default_factory=list)  # not ours (links, other files): left alone


def _plain(value: str) -> bool:
    """A single folder name: no separator, no drive, not ``.`` or ``..``."""
    return bool(value) and value not in (".", "..") and not any(c in value for c in "/\\:\0")


def check_indicators(names: list[str], installed: set[str]) -> list[str]:
    """The indicators that ``--indicator`` names; anything else is refused with exit status 2."""
    allowed = installed | {QUALITY}
    for name in names:
        if name == "all":
            continue
        if name not in allowed:
            hint = ""
            if not _plain(name):
                hint = " (an indicator is given by its name, never by a path)"
            raise ConfigError(
                f"--indicator {name!r}: no installed indicator has this name{hint}; nothing was deleted. "
                f"Choose from: {', '.join(sorted(allowed))}, or all (see `indicators plugins`)"
            )
    if "all" in names:
        return sorted(allowed)
    return list(dict.fromkeys(names))


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except (FileNotFoundError, NotADirectoryError):
        return []


def inst_of(file_name: str, suffixes: tuple[str, ...]) -> str:
    """The instrument id of a state file's name (``{INST}{kind suffix}.state.json``, or its ``.tmp``)."""
    inst = file_name.removesuffix(".tmp").removesuffix(".state.json")
    for suffix in suffixes:
        if suffix and inst.endswith(suffix):
            return inst.removesuffix(suffix)
    return inst


def vault_instruments(vault: Path, roots: list[str], suffixes: tuple[str, ...]) -> set[str]:
    """Every instrument id the vault knows: input folders of every kind, state files and output folders."""
    found: set[str] = set()
    for root in roots:
        for ex in _subdirs(vault / root):
            for mk in _subdirs(ex):
                found |= {p.name for p in _subdirs(mk)}
    for top in ("state", "derived"):
        for ind in _subdirs(vault / top):
            for ex in _subdirs(ind):
                for mk in _subdirs(ex):
                    if top == "derived":
                        found |= {p.name for p in _subdirs(mk)}
                    else:
                        found |= {inst_of(p.name, suffixes) for p in mk.glob("*.state.json")}
    return found


def check_instruments(insts: list[str] | None, vault: Path, roots: list[str],
                      suffixes: tuple[str, ...]) -> set[str] | None:
    if not insts:
        return None
    known = vault_instruments(vault, roots, suffixes)
    for inst in insts:
        if not _plain(inst):
            raise ConfigError(
                f"--inst {inst!r}: an instrument is given by its id, like BTC-USDT-SWAP, never by a path; "
                "nothing was deleted"
            )
        if inst not in known:
            raise ConfigError(
                f"--inst {inst}: the vault {vault} has no instrument of that name (no trades, state or outputs); "
                "nothing was deleted. Check the spelling (`indicators status` lists the instruments)"
            )
    return set(insts)


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base.resolve())
    except OSError:
        return False


def plan(vault: Path, indicators: list[str], insts: set[str] | None, suffixes: tuple[str, ...]) -> ResetPlan:
    """What a reset of ``indicators`` (for ``insts``, or every instrument) deletes; touches nothing."""
    out = ResetPlan(indicators)
    outputs: list[Path] = []
    for name in indicators:
        state_base = vault / "state" / name
        for ex in _subdirs(state_base):
            for mk in _subdirs(ex):
                for f in sorted(mk.iterdir()):
                    inst = inst_of(f.name, suffixes)
                    if not f.name.endswith((".state.json", ".state.json.tmp")) or (insts and inst not in insts):
                        continue
                    if f.is_symlink() or not f.is_file() or not _inside(f, state_base):
                        out.kept.append(f)
                    else:
                        out.files.append(f)
        derived_base = vault / "derived" / name
        for ex in _subdirs(derived_base):
            for mk in _subdirs(ex):
                for folder in _subdirs(mk):
                    if insts and folder.name not in insts:
                        continue
                    if not _inside(folder, derived_base):
                        out.kept.append(folder)
                        continue
                    for f in sorted(folder.iterdir()):
                        if f.name.endswith(".jsonl") and f.is_file() and not f.is_symlink():
                            outputs.append(f)
                        else:
                            out.kept.append(f)
                    out.folders.append(folder)
    out.files += outputs
    return out


def execute(p: ResetPlan) -> int:
    """Delete what :func:`plan` listed; returns the number of files deleted."""
    deleted = 0
    for f in p.files:
        try:
            f.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
    for folder in p.folders:
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty: something that is not ours stays, and so does its folder
    return deleted


def instruments_of(vault: Path, p: ResetPlan, suffixes: tuple[str, ...]) -> list:
    """The instruments (:class:`~indicator_core.storage.InstrumentKey`) whose files ``p`` deletes, to lock them first."""
    from .storage import InstrumentKey

    keys = set()
    for f in p.files:
        parts = f.relative_to(vault).parts  # state/IND/EX/MK/INST.state.json or derived/IND/EX/MK/INST/x.jsonl
        inst = inst_of(parts[4], suffixes)
        keys.add(InstrumentKey(parts[2], parts[3], inst))
    return sorted(keys, key=lambda k: k.label)
