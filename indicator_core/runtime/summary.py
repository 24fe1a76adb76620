"""What a run reports: each instrument's counters and failures, and the run's totals.

Nothing here raises on the user's behalf: a failure is a value with the
message (what went wrong, where) and the fix (what to do about it), which
the command line prints and ``--stats`` writes as JSON.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import IndicatorError
from ..storage import InstrumentKey

if TYPE_CHECKING:  # pragma: no cover
    from ..sources.files import Skipped
    from ..streams.base import StreamKind
    from .consumer import Consumer

@dataclass
class Failure:
    """What an instrument, or one of its indicators, could not do; the rest of the run went on."""

    message: str  # what went wrong, where
    fix: str  # what to do about it
    indicator: str | None = None  # None: the instrument as a whole
    # "error": this instrument's (or indicator's) problem; "backfill": files it could not take in;
    # "stopped": the disk refused a write, the run stopped here
    kind: str = "error"

    def to_json(self) -> dict[str, Any]:
        return {"indicator": self.indicator, "kind": self.kind, "message": self.message, "fix": self.fix}


class PluginFailure(IndicatorError):
    """An exception raised inside an indicator's own code."""

    def __init__(self, c: "Consumer", exc: BaseException, hook: str) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f", {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        super().__init__(
            f"{c.name} for {c.key.label}: the indicator raised {detail} (in {hook}{where}); it was stopped for "
            "this instrument, its outputs and state stay as of its last commit, the other indicators went on"
        )
        self.failure = Failure(
            str(self),
            f"fix or update the indicator (or disable it: `enabled = false` under [plugins.{c.name}]) and run "
            "again: it catches up from its last commit",
            c.name,
        )


@dataclass
class InstrumentSummary:
    key: InstrumentKey
    counters: dict[str, int] = field(default_factory=dict)  # the kind's counters (StreamKind.counters)
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    status: int = 1  # the exit status its failures call for (2: refused, e.g. another run holds it)
    kind: str = "trades"

    @property
    def error(self) -> str | None:
        """The failures' messages, one a line (``None``: nothing needs attention)."""
        return "\n".join(f.message for f in self.failures) or None

    @property
    def stopped(self) -> bool:
        """The instrument as a whole was not processed (its outputs and states are as they were)."""
        return any(f.indicator is None and f.kind != "backfill" for f in self.failures)


@dataclass
class RunSummary:
    instruments: list[InstrumentSummary] = field(default_factory=list)
    load_seconds: float = 0.0  # loading plugins, settings and instruments
    pass_seconds: float = 0.0  # the pass itself: states, new lines, indicators, commits
    skipped: list["Skipped"] = field(default_factory=list)  # what discovery found under raw/ and did not read
    kinds: dict[str, "StreamKind"] = field(default_factory=dict)  # the input kinds of the run, by name, in order

    def label(self, s: "InstrumentSummary") -> str:
        """An instrument's pass as the run's summary names it (the kind's suffix after the instrument)."""
        kind = self.kinds.get(s.kind)
        return s.key.label + (kind.label_suffix if kind is not None else "")

    def total(self, counter: str) -> int:
        return sum(s.counters.get(counter, 0) for s in self.instruments)

    @property
    def failures(self) -> list[tuple[InstrumentKey, Failure]]:
        return [(s.key, f) for s in self.instruments for f in s.failures]

    @property
    def stopped(self) -> Failure | None:
        """The failure that stopped the whole run (the disk), if any."""
        return next((f for s in self.instruments for f in s.failures if f.kind == "stopped"), None)

    @property
    def failed(self) -> list["InstrumentSummary"]:
        return [s for s in self.instruments if s.failures]

