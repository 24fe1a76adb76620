"""Trades (SPEC sections 1, 2, 7): files under ``raw/trades``, parsed in columns, bars and gaps by :mod:`..stream`."""

from __future__ import annotations

from .. import sources
from ..quality import QualityLog
from ..stream import COUNTERS, TradeStream
from .base import StreamKind


class Trades(StreamKind):
    name = "trades"
    counters = COUNTERS
    reads_mapped = True  # columnar.parse_chunk reads a mapped window in place

    def root(self, cfg) -> str:
        return cfg.input.root

    def patterns(self, cfg) -> list[str]:
        return cfg.input.patterns

    def new_stream(self, inst, cfg) -> TradeStream:
        return TradeStream(inst, cfg.run.fill_empty_bars)

    def parser(self, cfg, inst_id, tolerance_minutes, now_ms):
        return lambda chunk: sources.parse(chunk, inst_id, tolerance_minutes, now_ms)

    def list_files(self, cfg, folder, inst_id, cursors):
        from ..sources.files import list_files

        return list_files(folder, inst_id, cfg.input.patterns, cursors, cfg.input.day_offset_minutes())

    def quality_log(self, inst):
        return QualityLog(inst, QualityLog.Params())


TRADES = Trades()
