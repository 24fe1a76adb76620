"""The host: what one run loads once — plugins, input kinds, settings, the instrument table.

Everything a pass needs to know that is not in the vault comes from here:
the indicator classes and their validated settings, the input kinds (built-in
and from plugins, :func:`indicator_core.hookspecs.register_input_kinds`), the
contract table, and the listeners that hear of each commit (signal delivery).
A pool worker that was forked inherits it; a spawned worker or a cluster
worker loads its own from the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..config import Config, PluginSetting, plugin_settings
from ..indicator import Indicator
from ..instruments import Instrument, InstrumentTable
from ..params import canonical_params
from ..plugins import (collect_indicators, collect_input_kinds, collect_instruments, collect_venue_formats,
                       make_plugin_manager)
from ..prefetch import usable_cores
from ..sources.formats import FormatTable
from ..storage import InstrumentKey
from ..streams.base import StreamKind
from .consumer import Consumer, fingerprint
from .summary import Failure

if TYPE_CHECKING:  # pragma: no cover
    from .records import RecordRun


def reads_records(cls: type[Indicator], params: Any) -> bool:
    """Whether an indicator is a record consumer (``consumes = "records"``, or it declares inputs: SPEC 12)."""
    return cls.consumes == "records" or bool(cls.inputs(params))


@dataclass
class Host:
    """Plugins, input kinds, settings and the instrument table of one run."""

    cfg: Config
    indicators: dict[str, type[Indicator]]
    settings: dict[str, PluginSetting]
    table: InstrumentTable
    kinds: dict[str, StreamKind]  # by name, in the order their streams are read for an instrument
    formats: FormatTable  # the venue formats: which parser reads a file of an exchange folder
    # called after each commit of an instrument with {indicator: {output: committed length}} (signal delivery)
    on_commit: list[Callable[[InstrumentKey, dict[str, dict[str, int]]], None]] = field(default_factory=list)
    # Whether passes read and parse ahead in a helper thread.  None: when this process may use more than one
    # core.  A pool worker sets it (parallel.worker_threads): off when the other cores run other workers.
    threads: bool | None = None
    # each instrument's record consumers, loaded once for the host's life (a follower runs them after each commit)
    record_runs: dict[tuple[Path, InstrumentKey], "RecordRun"] = field(default_factory=dict)

    @classmethod
    def load(cls, cfg: Config) -> "Host":
        pm = make_plugin_manager()
        kinds = collect_input_kinds(pm)
        infos = collect_indicators(pm, kinds)
        indicators = {n: i.cls for n, i in infos.items()}
        settings = plugin_settings(cfg, indicators)
        table = InstrumentTable(collect_instruments(pm))
        for path in cfg.instruments_files:
            table.load_file(path)
        for inst_id, ic in cfg.instruments.items():
            table.add(Instrument(inst_id, ic.kind, ic.ct_val, ic.ct_val_ccy))
        formats = FormatTable(info.fmt for info in collect_venue_formats(pm))
        for kind in kinds.values():
            kind.check(cfg, formats)  # what of the config only the loaded plugins can judge
        return cls(cfg, indicators, settings, table, kinds, formats)

    def parse_threads(self) -> bool:
        """Whether this process's passes read and parse ahead in a helper thread (see :mod:`..prefetch`)."""
        return usable_cores() > 1 if self.threads is None else self.threads

    def consumers(
        self, vault: Path, key: InstrumentKey, inst: Instrument, kind: StreamKind, failures: list[Failure] | None = None,
    ) -> list[Consumer]:
        """The quality log and the enabled indicators that ``kind`` feeds; one that cannot be set up goes to ``failures``."""
        fill = kind.fills_empty_bars(self.cfg)
        extra = kind.fingerprint_extra(self.cfg, inst.inst_id)
        out = []
        quality = kind.quality_log(inst)
        out.append(Consumer(vault, key, quality, {}, fingerprint({}, inst, fill, extra), fill,
                            kind.quality_state_file(vault, key), extra))
        for name, setting in self.settings.items():
            cls = self.indicators[name]
            if not setting.enabled or cls.consumes != kind.name or cls.scope != "instrument":
                continue
            params = canonical_params(setting.params)
            if reads_records(self.indicators[name], setting.params):
                continue  # fed by records.RecordRun after the pass, not by the stream
            try:
                indicator = self.indicators[name](inst, setting.params)
                out.append(Consumer(vault, key, indicator, params, fingerprint(params, inst, fill, extra), fill,
                                    fp_extra=extra))
            except Exception as exc:
                if failures is None:
                    raise
                failures.append(Failure(
                    f"{name} for {key.label}: the indicator could not be set up ({type(exc).__name__}: {exc}); "
                    "the other indicators went on",
                    f"fix or update the indicator (or disable it: `enabled = false` under [plugins.{name}]) and run "
                    "again: it catches up from its last commit", name))
        return out
