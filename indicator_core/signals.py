"""Signal streams: the outputs whose records are signals, as their indicators declare them (``Indicator.signals``).

Notifiers deliver them (:mod:`indicator_core.notify`), ``status`` lists their
deliveries, ``study`` and ``chart`` score and mark the ones with a direction.
None of those keeps a list of plugin names: they ask the installed
indicators through :func:`signal_streams`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config
from .errors import ConfigError, IndicatorError
from .indicator import Indicator
from .plugins import collect_indicators, make_plugin_manager
from .storage import InstrumentKey, derived_dir


@dataclass(frozen=True)
class SignalStream:
    """A signal output as notifiers see it: the stream name, who writes it, how its records are ordered and named."""

    name: str  # what [notify.NAME] streams = [...] calls it
    indicator: str  # the producing indicator ([plugins.NAME] in the config)
    folder: str  # where it writes: its folder under derived/ and state/ (Indicator.folder, default its name)
    output: str  # the output stream: derived/{folder}/.../{output}.jsonl
    time_field: str  # the record field that orders it in time
    id_fields: tuple[str, ...]  # the record fields that, after the instrument id, make the signal id
    direction_field: str | None = None

    def signal_id(self, inst_id: str, record: dict[str, Any]) -> str:
        try:
            return "|".join([inst_id, *(str(record[f]) for f in self.id_fields)])
        except KeyError as exc:
            raise IndicatorError(
                f"signal stream {self.name!r}: a record of {self.output}.jsonl ({inst_id}) has no field "
                f"{exc.args[0]!r}, which the {self.indicator!r} indicator declares as part of its signal id "
                f"{self.id_fields}; its records cannot be delivered until the indicator writes that field (or "
                f"declares the fields it writes)"
            ) from None

    def path(self, vault: Path, key: InstrumentKey) -> Path:
        return derived_dir(vault, self.folder, key) / f"{self.output}.jsonl"


def signal_streams(indicators: dict[str, type[Indicator]]) -> dict[str, SignalStream]:
    """The signal streams the installed indicators declare (``Indicator.signals``), by name."""
    out: dict[str, SignalStream] = {}
    for name in sorted(indicators):
        for s in indicators[name].signals:
            stream = s.name or name
            if stream in out:
                raise ConfigError(f"signal stream {stream!r} is declared by both {out[stream].indicator!r} and "
                                  f"{name!r}; uninstall one of them")
            out[stream] = SignalStream(stream, name, indicators[name].folder or name, s.output, s.time_field,
                                       s.id_fields, s.direction_field)
    return out


def installed_streams() -> dict[str, SignalStream]:
    """The signal streams of the installed plugins (loads them)."""
    return signal_streams({n: i.cls for n, i in collect_indicators(make_plugin_manager()).items()})


def check_streams(cfg: Config, streams: dict[str, SignalStream]) -> None:
    """Every ``[notify.NAME] streams`` entry names a declared signal stream (``ConfigError`` naming the key)."""
    names = sorted(streams)
    allowed = " or ".join([", ".join(repr(n) for n in names[:-1]), repr(names[-1])] if len(names) > 1 else
                          [repr(n) for n in names]) if names else "(none: no installed indicator declares signals)"
    for notifier, n in sorted(cfg.notify.items()):
        for k, stream in enumerate(n.streams):
            if stream not in streams:
                raise ConfigError(f"{cfg.source}: notify.{notifier}.streams.{k}: Input should be {allowed} "
                                  f"(got {stream!r}): the signal outputs the installed indicators declare")
