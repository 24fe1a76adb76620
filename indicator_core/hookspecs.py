"""The extension points of indicator_core.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose
names match the specs below.  Built-in indicators and third-party packages use
the same hooks; a package makes itself known through the ``indicator_core``
entry-point group::

    # pyproject.toml of a third-party indicator
    [project.entry-points.indicator_core]
    my_indicator = "my_indicator_package"

An implementation may accept fewer arguments than the spec declares, so new
arguments can be added here without breaking existing plugins.

Hooks are called once when the host starts (before any trade is read); the
per-trade and per-bar work happens in the :class:`~indicator_core.Indicator`
objects a plugin registers, which the host feeds in one pass over the trades.

An indicator registered here may also read other indicators' records instead
of trades (SPEC section 12): it declares them with ``Indicator.inputs(params)``
(a list of :class:`~indicator_core.Input`: producer, stream, required or not,
the minute of a record) and receives them in ``Indicator.on_records(minute,
records, emit)``, minute by minute, once every producer has committed them.
The same registration hook serves both kinds; see :mod:`indicator_core.runtime.records`.
"""

from __future__ import annotations

from typing import Callable

import pluggy

from .indicator import Indicator
from .instruments import Instrument
from .sources.formats import VenueFormat
from .streams.base import StreamKind

PROJECT = "indicator_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_indicators(register: Callable[[type[Indicator]], None]) -> None:
    """Register indicator classes by calling ``register(IndicatorSubclass)``.

    Called once at start-up on every plugin.  Each class needs a unique
    ``name``: it is the ``[plugins.NAME]`` table of the config file and the
    output folder ``derived/NAME/``.  Registering a name twice is an error.
    Returns nothing.

    A class's ``consumes`` says which input kind feeds it: ``"trades"`` (the
    default: ``on_trades``, ``on_bar``, ``on_advance``), ``"records"`` (other
    indicators' committed records: ``on_records``, see ``Indicator.inputs``),
    a kind a plugin registers (``register_input_kinds``), or ``"books"`` (the L2
    order book: ``on_book`` once per closed minute with the book at its close,
    see :class:`indicator_core.streams.book_stream.BookMinute`).  Both kinds get
    ``on_quality`` for their own stream's events and the same state handling (a
    block of late trades, gaps or refused lines comes to ``on_quality_events`` as
    columns, by default one ``on_quality`` each).
    A trade indicator's ``trades_by_minute`` (default true) says whether
    ``on_trades`` gets one minute at a time or a chunk's trades at once, and
    ``on_empty_bars`` takes a run of filled minutes without a trade (by
    default: ``on_bar`` for each); one that implements ``on_bars`` gets its closed
    minutes as runs of columns instead (:class:`indicator_core.BarRun`).  ``enabled_by_default = False`` makes an indicator wait for
    ``enabled = true`` under its ``[plugins.NAME]`` table (one that costs much of the pass); a
    ``"derivs"`` indicator gets ``on_derivs_minutes`` (funding, open interest and liquidations of a run of
    closed minutes as columns, :class:`indicator_core.DerivsMinutes`) or, by default through it,
    ``on_derivs`` (one closed minute, :class:`indicator_core.DerivsMinute`).
    """


@hookspec
def register_instruments(register: Callable[[Instrument], None]) -> None:
    """Add or override contract definitions by calling ``register(Instrument(...))``.

    Called once at start-up, after the built-in table and before the config's
    own ``[instruments]`` tables, which win.  Returns nothing.
    """


@hookspec
def register_input_kinds(register: Callable[[StreamKind], None]) -> None:
    """Register kinds of input stream by calling ``register(kind)`` with a :class:`StreamKind` instance.

    Called once at start-up, before the indicators are registered (an
    indicator's ``consumes`` names a kind).  A kind says where its raw files
    are under the vault (``root``, ``patterns``), how a chunk of their lines
    is parsed (``parser``, a pure function that may run in a helper thread),
    which stream object turns parsed lines into events for the indicators that
    consume it (``new_stream``: ``process``, ``to_state``, ``set_state``,
    ``counters``), and which data-quality log it keeps.  The runtime drives
    every kind the same way: files, cursors, chunks, commits, resume,
    ``status``, ``reset``, ``--jobs`` and Dask.  The built-in ``trades`` and
    ``books`` are registered through this hook too.  A name registered twice
    is an error.  Returns nothing.
    """


@hookspec
def register_venue_formats(register: Callable[[VenueFormat], None]) -> None:
    """Register venue file formats by calling ``register(VenueFormat(...))``.

    Called once at start-up.  A format reads one exchange's files of one input
    kind: the ``{exchange}`` folder of the vault layout chooses the formats, the
    file name's ending picks one of them (``.jsonl``, ``.csv.gz``, ...), and its
    ``parse(chunk, inst_id, window)`` turns a chunk of complete lines into trade
    columns.  The built-in OKX, Binance USDⓈ-M and Bybit v5 formats are registered
    through this hook too (:mod:`indicator_core.builtin_formats`).  A name
    registered twice, or two formats reading the same ending of one exchange,
    is an error.  Returns nothing.
    """
