"""The events of the derivatives stream: one closed minute (:class:`DerivsMinute`) and its liquidations."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ..timeutil import ClosedMinute


@dataclass
class Liquidation:
    """One liquidation: a ``side`` (``"long"``/``"short"``) position of ``sz`` contracts at ``px``, which is
    ``base`` and ``quote`` as a trade of that size would be (SPEC section 1)."""

    ts: int
    side: str
    px: Decimal
    sz: Decimal
    base: Decimal
    quote: Decimal


@dataclass
class DerivsMinute(ClosedMinute):
    """What the derivatives said at the close of one minute: what a derivs indicator's ``on_derivs`` receives.

    ``oi`` (contracts) and ``oi_ts`` are the last open interest at or before
    the close (``oi_ccy``: the venue's own base figure, where it gives one);
    ``funding_rate``, ``next_funding_ms`` and ``funding_interval_ms`` the last
    known funding (the interval from the push, or from two successive funding
    times; ``None`` when not known yet).  ``liquidations`` are the minute's,
    ordered by ``ts``, then side (long first), then ``px`` and ``sz`` by value.  Decimals are exact and
    without trailing zeros (the same whatever the venue's text).  ``close`` is the minute's close from
    ``volume_1m`` (``None``: no trades, or no record for the minute).
    ``source`` names the venue format the items came from.
    """

    minute: int
    oi: Decimal | None
    oi_ccy: Decimal | None
    oi_ts: int | None
    funding_rate: Decimal | None
    funding_ts: int | None
    next_funding_ms: int | None
    funding_interval_ms: int | None
    liquidations: list[Liquidation] = field(default_factory=list)
    close: Decimal | None = None
    source: str | None = None
    # the minute's liquidations of longs and of shorts (quote) where a history gives only their sums (Coinalyze)
    liq_sums: tuple[Decimal, Decimal] | None = None
    # other instruments' liquidations found in this instrument's files, (ts, inst_id, side, px, sz) in order,
    # where it is named in [derivs] liquidations_from (its quality log hands them on)
    foreign: list[tuple] = field(default_factory=list)
