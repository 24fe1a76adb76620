"""The ``derivs`` input kind (SPEC section 17): funding, open interest and liquidations under ``raw/derivs``.

Raw files: ``{vault}/raw/derivs/{exchange}/{market}/{INST_ID}/derivs_{date}.jsonl``,
one push per line as received, channels mixed, read with the same files,
cursors and commits as trades and books.  The exchange folder chooses the
format (:mod:`indicator_core.sources.derivs_lines`), the stream is
:class:`.derivs_stream.DerivsStream`, its event :class:`.derivs_stream.DerivsMinute`
(``Indicator.on_derivs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..sources.timecheck import TimeWindow
from ..storage import InstrumentKey
from .base import StreamKind

if TYPE_CHECKING:  # (the stream loads when a vault has derivs, not with every command)
    from .derivs_stream import DerivsStream

STATUS_COUNTERS = ("items", "oi", "funding", "liquidations", "duplicates", "late", "other_inst", "rejects", "minutes")


class Derivs(StreamKind):
    """The ``derivs`` kind of input."""

    name = "derivs"

    @property
    def counters(self) -> tuple[str, ...]:  # type: ignore[override]
        from .derivs_stream import COUNTERS

        return COUNTERS

    # inline: a day is one or two chunks (batch_scale), so a helper thread has nothing to overlap (measured:
    # the command took 0.34-0.44 s with one, 0.31-0.36 s without); the compiled scan leaves the GIL all the same
    parse_in_threads = False
    # a day of pushes is ~17 MB holding ~100,000 items, summed up a chunk at a time (streams/derivs_columns.py):
    # the fixed part of a chunk's work counts, so a day is read in one or two chunks
    batch_scale = 4
    venue_formats = True

    @property
    def reads_outputs(self) -> tuple[str, ...]:  # type: ignore[override]
        from .derivs_stream import PRICE_INPUT  # the closes of volume_1m price the open interest

        return (PRICE_INPUT.indicator,)

    label_suffix = " derivs"
    status_title = "derivs"
    state_suffix = ".derivs"  # {INST_ID}.derivs.state.json in the quality state folder
    status_columns = (("last minute", "last_minute_utc", "<21"), ("oi", "oi", ">8"), ("funding", "funding", ">8"),
                      ("liqs", "liquidations", ">6"), ("dup", "duplicates", ">5"), ("late", "late", ">5"),
                      ("rejects", "rejects", ">7"))

    def root(self, cfg) -> str:
        return cfg.derivs.root

    def patterns(self, cfg) -> list[str]:
        return cfg.derivs.patterns

    def new_stream(self, inst, cfg) -> DerivsStream:
        from .derivs_stream import DerivsStream

        return DerivsStream(cfg.derivs.late_seconds, inst)

    def bind(self, stream: DerivsStream, vault: Path, key: InstrumentKey, cfg, enabled: set[str]) -> None:
        """The closes of ``volume_1m`` count when the volume analyzer runs and the instrument has trades."""
        trades = vault / cfg.input.root / key.exchange / key.market / key.inst_id
        volume = self.reads_outputs[0]
        stream.bind(vault, key, volume in enabled and trades.is_dir(), cfg.derivs.liquidations_from)

    def parser(self, cfg, inst_id: str, tolerance_minutes: int = 0, now_ms: int = 0):
        def parse(chunk):
            f = chunk.file
            window = TimeWindow.for_day(f.date, f.day_offset, tolerance_minutes, now_ms or None)
            return f.fmt.parse(chunk, inst_id, window)

        return parse

    def quality_log(self, inst):
        from ..quality import DerivsQualityLog

        return DerivsQualityLog(inst, DerivsQualityLog.Params())

    def summary_line(self, c):
        return (f"{c['items']} derivs items ({c['lines']} lines: {c['oi']} open interest, {c['funding']} funding, "
                f"{c['liquidations']} liquidations), {c['minutes']} minutes closed, {c['duplicates']} duplicates, "
                f"{c['late']} late, {c['rejects']} rejects")

    def summary_totals(self, total):
        items = total("items")
        return f"{items} derivs items, {total('minutes')} derivs minutes written, " if items else ""

    def status_fields(self, state, cfg, vault, key):
        stream = state.get("stream") or {}
        counters = stream.get("counters", {})
        return {"last_minute_utc": state.get("last_bar_utc"), "source": stream.get("source"),
                **{k: int(counters.get(k, 0)) for k in STATUS_COUNTERS}}

    def fingerprint_extra(self, cfg, inst_id: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"late_seconds": cfg.derivs.late_seconds}
        if cfg.derivs.liquidations_from:
            extra["liquidations_from"] = sorted(cfg.derivs.liquidations_from)
        return extra


DERIVS = Derivs()
