"""The volume analyzer (SPEC section 4): ``volume_1m.jsonl``, one record per closed bar.

Per minute: taker buy/sell volume and delta, whale trades (quote notional
strictly above ``whale_threshold_usd``), the volume tier against the median
of the previous ``median_window`` bars, absorption and divergence.
"""

from __future__ import annotations

from indicator_core import hookimpl

from .aggregate import AggregateVolume
from .analyzer import VolumeAnalyzer, VolumeParams

__all__ = ["AggregateVolume", "VolumeAnalyzer", "VolumeParams", "register_indicators"]


@hookimpl
def register_indicators(register) -> None:
    register(VolumeAnalyzer)
    register(AggregateVolume)  # runs for each [aggregates.NAME] of the config (SPEC section 16)
