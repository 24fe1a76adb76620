"""A consumer: one indicator of one instrument, its outputs, its state file, and the commit protocol.

Every indicator of an instrument (and the built-in quality log of each
input kind) is a consumer with its own state file holding its cursor, a copy
of the stream state, the committed length of each of its outputs and the
indicator's own state.  :func:`commit_all` is the one way a consumer's work
becomes durable (SPEC section 8): every output on disk, then every state.
"""

from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path
from typing import Any, Callable

import orjson

from ..errors import FingerprintMismatch, IndicatorError, StateError
from ..indicator import Indicator
from ..instruments import Instrument
from ..integrity import FilesRead
from ..params import canonical_params
from ..sources.files import Cursor
from ..jsonlines import JsonLines
from ..storage import (InstrumentKey, OutputFile, at_once, derived_dir, encode_state, raise_first, read_state,
                       state_path, write_state_bytes)
from ..timeutil import iso_minute
from .summary import PluginFailure


def fingerprint(params: dict[str, Any], inst: Instrument, fill_empty: bool, extra: dict[str, Any] | None = None) -> str:
    """What an indicator's output depends on besides the trades; a change means a rebuild."""
    doc = {
        "params": params,
        "fill_empty_bars": fill_empty,
        "instrument": {"kind": inst.kind, "ct_val": str(inst.ct_val), "ct_val_ccy": inst.ct_val_ccy},
    }
    if extra is not None:  # what the input kind adds (the book channel)
        doc["input"] = extra
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class Consumer:
    """One indicator of one instrument, with its outputs and its saved position."""

    def __init__(self, vault: Path, key: InstrumentKey, indicator: Indicator, params: dict[str, Any], fp: str,
                 fill_empty: bool = True, state_file: Path | None = None, fp_extra: dict[str, Any] | None = None) -> None:
        self.name = type(indicator).folder or indicator.name  # its folder under derived/ and state/
        self.fill_empty = fill_empty  # what the fingerprint hashed, besides params and instrument
        self.fp_extra = fp_extra  # and what the input kind added (the book channel)
        self.key = key
        self.indicator = indicator
        self.params = params
        self.fingerprint = fp
        self.state_file = state_file or state_path(vault, self.name, key)
        self.cursor = Cursor()
        self.stream_state: dict[str, Any] | None = None
        self.stream_bytes: bytes | None = None  # the stream state as committed, to tell whether anything changed
        self.read: FilesRead | None = FilesRead()  # files read before the cursor's (None: an old state, unknown)
        self.last_bar: int | None = None
        folder = derived_dir(vault, self.name, key)
        self.outputs = {s: OutputFile(folder / f"{s}.jsonl", 0) for s in indicator.outputs()}
        self.committed: dict[str, int] = dict.fromkeys(self.outputs, 0)  # output lengths at the last commit

    def reset_command(self, vault: Path) -> str:
        return f"indicators reset --vault {vault} --indicator {self.name} --inst {self.key.inst_id}"

    def load(self, vault: Path) -> None:
        try:
            state = read_state(self.state_file)
        except StateError as exc:
            raise StateError(f"{exc}\n  to rebuild {self.name} for {self.key.label}: {self.reset_command(vault)}") from exc
        if state is None:
            for out in self.outputs.values():
                out.recover()  # no state: anything on disk is an uncommitted tail
            return
        try:
            lengths = {s: int(n) for s, n in state["outputs"].items()}
            written = any(lengths.values())
            if state["fingerprint"] != self.fingerprint and written and not self._same_by_value(state):
                raise FingerprintMismatch(
                    f"{self.name} for {self.key.label}: its settings changed since it wrote its output\n"
                    f"  before: {orjson.dumps(self._by_value(state.get('params'))).decode()}\n"
                    f"  now:    {orjson.dumps(self.params).decode()}\n"
                    + self._input_change(state)
                    + "Mixing two definitions in one file is refused. Either restore the old settings, or rebuild "
                    f"this indicator from the start of the trades with:\n"
                    f"  {self.reset_command(vault)}"
                )
            for s, n in lengths.items():
                if s in self.outputs:
                    self.outputs[s].length = n
            self.cursor = Cursor.from_state(state["cursor"])
            self.stream_state = state["stream"]
            self.stream_bytes = orjson.dumps(self.stream_state)
            self.read = FilesRead.from_state(state.get("files_read"))
            self.last_bar = state.get("last_bar")
            plugin_state = state["plugin"]
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"state file {self.state_file} is incomplete ({exc!r}); rebuild with `{self.reset_command(vault)}`"
            ) from exc
        try:
            self.indicator.set_state(plugin_state)
        except Exception as exc:  # the indicator's own code: its failure, reported as such
            raise PluginFailure(self, exc, "set_state") from exc
        for out in self.outputs.values():
            out.recover()
        self.committed = {s: out.length for s, out in self.outputs.items()}

    def _input_change(self, state: dict[str, Any]) -> str:
        """Lines naming a change of the input's settings (the book channel, kept in the stream state)."""
        if self.fp_extra is None:
            return ""
        before = {k: (state.get("stream") or {}).get(k) for k in self.fp_extra}
        if before == self.fp_extra:
            return ""
        return (f"  input before: {orjson.dumps(before).decode()}\n"
                f"  input now:    {orjson.dumps(self.fp_extra).decode()}\n")

    def _same_by_value(self, state: dict[str, Any]) -> bool:
        """A state whose fingerprint hashed its parameters as spelled (as earlier versions did), equal by value.

        Its fingerprint is recomputed from the parameters it recorded, with
        today's instrument terms and fill setting: if that matches, only the
        parameters can differ, and they are compared as validated values.  A
        setting the indicator gained since (one the state does not record) is
        the same definition while it keeps its default, which leaves the
        output as it was (the volume analyzer's ``base_volumes``).
        """
        old = state.get("params")
        if not isinstance(old, dict) or set(old) - set(self.params):
            return False
        if fingerprint(old, self.indicator.instrument, self.fill_empty, self.fp_extra) != state["fingerprint"]:
            return False
        return self._by_value(old) == self.params

    def _by_value(self, params: Any) -> Any:
        """Recorded parameters in today's canonical spelling (as recorded if they are not valid today)."""
        try:
            return canonical_params(type(self.indicator).Params.model_validate(params))
        except ValueError:  # pydantic's ValidationError
            return params

    def emit(self, stream: str, record: dict[str, Any]) -> None:
        try:
            out = self.outputs[stream]
        except KeyError:
            raise IndicatorError(
                f"indicator {self.name!r} emitted to {stream!r}, which is not among its outputs() {list(self.outputs)}"
            ) from None
        if type(record) is JsonLines:  # a batch of records written from columns (jsonlines.json_lines)
            out.write(record)
            return
        out.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def plugin_state(self) -> Any:
        """The indicator's own state for a commit (its failure raised as a :class:`PluginFailure`)."""
        try:
            return self.indicator.get_state()
        except Exception as exc:
            raise PluginFailure(self, exc, "get_state") from exc

    def state_bytes(self, cursor: Cursor, stream: dict[str, Any], plugin: Any, read: FilesRead) -> bytes:
        """The state file a commit writes, once the outputs are on disk at their current lengths."""
        doc = {
            "indicator": self.name,
            "indicator_version": type(self.indicator).version,
            "inst_id": self.key.inst_id,
            "fingerprint": self.fingerprint,
            "params": self.params,
            "cursor": cursor.to_state(),
            "last_bar": self.last_bar,
            "last_bar_utc": iso_minute(self.last_bar) if self.last_bar is not None else None,
            "stream": stream,
            "outputs": {s: out.length for s, out in self.outputs.items()},
            "plugin": plugin,
            "files_read": read.to_state(),
        }
        try:
            return encode_state(doc)
        except orjson.JSONEncodeError as exc:  # only the indicator's own state can fail to encode
            raise PluginFailure(self, exc, "get_state") from exc

    def committed_at(self, cursor: Cursor, stream_bytes: bytes, read: FilesRead) -> None:
        """Its state file was replaced: the position it names is now the last commit."""
        self.cursor = cursor
        self.stream_bytes = stream_bytes
        self.read = read
        self.committed = {s: out.length for s, out in self.outputs.items()}

    def commit(self, cursor: Cursor, stream: dict[str, Any], stream_bytes: bytes, read: FilesRead) -> None:
        """Outputs on disk, then the state, of this consumer alone (its failure raised as a PluginFailure)."""
        commit_all([(self, read)], cursor, stream, stream_bytes)

    def cut_back(self) -> None:
        """Forget everything since the last commit: buffered records, and bytes already handed to the files."""
        for s, out in self.outputs.items():
            out.discard()
            out.close()
            out.length = self.committed.get(s, 0)
            try:
                out.recover()
            except (OSError, IndicatorError):
                pass  # the next run cuts it back when it loads the state

    def close(self) -> None:
        for out in self.outputs.values():
            out.close()


def _raise(c: Consumer, exc: PluginFailure) -> None:
    raise exc


def commit_all(todo: list[tuple[Consumer, FilesRead]], cursor: Cursor, stream: dict[str, Any], stream_bytes: bytes,
               failed: Callable[[Consumer, PluginFailure], None] = _raise) -> None:
    """Commit consumers at ``cursor`` (SPEC section 8): every output on disk, then every state file.

    Each step runs its fsyncs side by side (:func:`storage.at_once`), and no
    state is written before every output is on disk.  A consumer whose own
    state fails (``get_state`` raises, or holds what JSON cannot) goes to
    ``failed`` and is not committed; the others are.  A write the disk refuses
    is raised once the step has ended, the states written beside it counted.
    """
    ready: list[tuple[Consumer, FilesRead, Any]] = []
    for c, read in todo:
        try:
            ready.append((c, read, c.plugin_state()))
        except PluginFailure as exc:
            failed(c, exc)
    raise_first(at_once([call for c, _, _ in ready for out in c.outputs.values() for call in out.syncs()]))
    for c, _, _ in ready:
        for out in c.outputs.values():
            out.synced()
    writes: list[tuple[Consumer, FilesRead, bytes]] = []
    for c, read, plugin in ready:
        try:
            writes.append((c, read, c.state_bytes(cursor, stream, plugin, read)))
        except PluginFailure as exc:
            failed(c, exc)
    errors = at_once([partial(write_state_bytes, c.state_file, data) for c, _, data in writes])
    for (c, read, _), exc in zip(writes, errors):
        if exc is None:
            c.committed_at(cursor, stream_bytes, read)
    raise_first(errors)

