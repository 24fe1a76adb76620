"""Aggregates across venues (SPEC section 16): ``[aggregates.NAME]`` read as the instrument ``aggregate/all/NAME``.

An aggregate is a record-consuming instrument: the indicators with ``scope =
"aggregate"`` (the built-in ones: the aggregate's volume analyzer and CVD) run
for it after the members' passes, their params' ``members`` set to the
aggregate's, reading the members' committed records through the same
:class:`~.records.RecordConsumer` as every record consumer, so a minute is
written once every member has passed it, and resume and kill safety are those
of section 12.  Each aggregate is locked like an instrument while it runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndicatorError, LockedError
from ..indicator import Indicator
from ..lock import InstrumentLock
from ..params import canonical_params
from ..storage import InstrumentKey, state_path
from .consumer import Consumer, fingerprint
from .host import Host
from .records import RecordConsumer, run_consumers
from .summary import Failure, InstrumentSummary

EXCHANGE, MARKET = "aggregate", "all"  # an aggregate's folders: {indicator}/aggregate/all/{NAME}


def aggregate_key(name: str) -> InstrumentKey:
    return InstrumentKey(EXCHANGE, MARKET, name)


class AggregateRun:
    """One aggregate's consumers, loaded once (a follower keeps them between passes)."""

    def __init__(self, host: Host, vault: Path, name: str, members: list[str]) -> None:
        self.host, self.vault, self.name = host, vault, name
        self.key = aggregate_key(name)
        for m in members:
            ex, mk, inst_id = m.split("/")
            if not ((vault / host.cfg.input.root / ex / mk / inst_id).is_dir()
                    or state_path(vault, "volume", InstrumentKey(ex, mk, inst_id)).exists()):
                raise ConfigError(f"{host.cfg.source}: aggregates.{name}.members: {m!r} is not an instrument of the "
                                  f"vault (no folder {host.cfg.input.root}/{m}/); check the spelling")
        first = host.table.get(members[0].split("/")[2])
        inst = replace(first, inst_id=f"{EXCHANGE}/{name}")  # the first member's contract terms, for the fingerprint
        given = {n: s.params for n, s in host.settings.items()}
        fill = host.cfg.run.fill_empty_bars
        self.consumers: list[RecordConsumer] = []
        for cls in _plan(host):
            params = cls.resolve_params(host.settings[cls.name].params, given)
            params = params.model_copy(update={"members": tuple(members)})
            canonical = canonical_params(params)
            c = Consumer(vault, self.key, cls(inst, params), canonical, fingerprint(canonical, inst, fill), fill)
            c.load(vault)
            self.consumers.append(RecordConsumer(c, cls.inputs(params), host.settings, vault, host.cfg))

    def run(self) -> int:
        """Deliver and commit what the members have committed; the minutes of the aggregate's tape written."""
        minutes = run_consumers(self.host, self.key, self.consumers)
        return minutes[0] if minutes else 0  # the first consumer reads the members: its minutes are the tape's


def _plan(host: Host) -> list[type[Indicator]]:
    """The enabled aggregate indicators, those reading the members before those reading the aggregate's own."""
    found = [cls for name, cls in host.indicators.items() if cls.scope == "aggregate" and host.settings[name].enabled]
    return sorted(found, key=lambda cls: (not any(i.instrument for i in cls.inputs(_probe(cls))), cls.name))


def _probe(cls: type[Indicator]) -> Any:
    return cls.Params.model_construct(members=("x/x/x",))


def run_aggregates(host: Host, vault: Path, locked: bool = True) -> list[InstrumentSummary]:
    """Every aggregate of the config, after its members' passes; what went wrong is in the summaries."""
    done = []
    for name, agg in host.cfg.aggregates.items():
        key = aggregate_key(name)
        summary = InstrumentSummary(key, {"minutes": 0}, kind="aggregate")
        lock = InstrumentLock(vault, key) if locked else None
        try:
            if lock is not None:
                lock.__enter__()
            try:
                run = host.record_runs.get((vault, key))
                if run is None:
                    run = host.record_runs[vault, key] = AggregateRun(host, vault, name, agg.members)
                summary.counters["minutes"] = run.run()
            finally:
                if lock is not None:
                    lock.release()
        except LockedError as exc:
            summary.failures.append(Failure(str(exc), "wait for the other run to finish, then run again"))
            summary.status = exc.exit_status
        except IndicatorError as exc:
            host.record_runs.pop((vault, key), None)
            summary.failures.append(Failure(
                f"aggregate {name}: {exc}",
                getattr(exc, "fix", None) or f"check [aggregates.{name}] members, or rebuild the aggregate: "
                f"indicators reset --vault {vault} --indicator all --inst {name}"))
        done.append(summary)
    return done
