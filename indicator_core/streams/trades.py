"""Trades (SPEC sections 1, 2, 7): files under ``raw/trades``, parsed in columns, bars and gaps by :mod:`..stream`."""

from __future__ import annotations

from .. import integrity, sources
from ..config import check_patterns
from ..quality import QualityLog
from .trade_stream import COUNTERS, TradeStream
from ..sources.files import list_files
from .base import StreamKind


class Trades(StreamKind):
    name = "trades"
    # and, of the rejects, the lines refused for their time alone (the run's summary names the likely cause)
    counters = (*COUNTERS, "refused_for_time")
    reads_mapped = True  # a format may read a mapped window in place (VenueFormat.reads_mapped: OKX JSON lines)
    venue_formats = True

    def root(self, cfg) -> str:
        return cfg.input.root

    def patterns(self, cfg) -> list[str]:
        return cfg.input.patterns

    def new_stream(self, inst, cfg) -> TradeStream:
        return TradeStream(inst, cfg.run.fill_empty_bars)

    def parser(self, cfg, inst_id, tolerance_minutes, now_ms):
        return lambda chunk: sources.parse(chunk, inst_id, tolerance_minutes, now_ms)

    def list_files(self, cfg, folder, inst_id, cursors, formats=None):
        return list_files(folder, inst_id, cfg.input.patterns, cursors, cfg.input.day_offset_minutes(), formats,
                          self.name)

    def check(self, cfg, formats) -> None:
        check_patterns(cfg, {e for f in formats.formats.values() if f.kind == self.name for e in f.suffixes})

    def fills_empty_bars(self, cfg) -> bool:
        return cfg.run.fill_empty_bars

    status_columns = (("last bar", "last_bar_utc", "<21"), ("trades", "trades", ">10"), ("dup", "duplicates", ">6"),
                      ("gaps", "gaps", ">5"), ("late", "late", ">5"), ("rejects", "rejects", ">7"))

    def summary_line(self, c):
        line = (f"{c['trades']} trades ({c['lines']} lines), {c['bars']} bars closed, {c['duplicates']} duplicates, "
                f"{c['gaps']} gaps, {c['late']} late, {c['rejects']} rejects")
        if c.get("refused_for_time", 0) > 10:  # more than a file's listed ones: say what it likely is
            line += (f"\n  {c['refused_for_time']:,} of the rejects are trades outside their file's day (the rejects "
                     "log lists a file's first ten, and the rest in one line once the next file is read): an exporter "
                     "that never rolled its file, or names files by local time? see [input] day_offsets")
        return line

    def summary_totals(self, total):
        return f"{total('trades')} trades, {total('bars')} bars written, "

    def status_fields(self, state, cfg, vault, key):
        stream = state.get("stream") or {}
        counters = stream.get("counters", {})
        return {
            "last_bar_utc": state.get("last_bar_utc"),
            **{k: int(counters.get(k, 0)) for k in ("trades", "duplicates", "gaps", "missing_ids", "late", "rejects")},
            # a venue whose trade ids are not integers (Bybit): duplicates judged by id, gaps never
            **({"gaps_judged": False} if "recent" in stream else {}),
            **({"skipped": int(counters["skipped"])} if counters.get("skipped") else {}),
            # day files dated before the cursor that it did not read (backfill), and how to take them in
            "backfill": integrity.backfill_of_state(vault, cfg.input.root, cfg.input.patterns, key.exchange,
                                                    key.market, key.inst_id, state) if cfg is not None else [],
        }

    def quality_log(self, inst):
        return QualityLog(inst, QualityLog.Params())


TRADES = Trades()
