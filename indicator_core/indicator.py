"""The :class:`Indicator` base class: a small stateful object the host feeds.

An indicator never reads trades and never opens a file.  For each instrument
the host makes one instance, restores its state, and calls, in stream order:

* :meth:`Indicator.on_trades` with the accepted trades of one minute (arrival
  order; duplicates and late trades already removed), or of many minutes at
  once for a class that sets ``trades_by_minute = False``;
* :meth:`Indicator.on_bar` when a one-minute bar closes (empty filled minutes
  included, unless the config switches filling off; a run of them may come at
  once through :meth:`Indicator.on_empty_bars`);
* or, for a class that implements :meth:`Indicator.on_bars`, the closed
  bars and filled minutes as runs of columns instead of ``on_bar``/``on_empty_bars``;
* :meth:`Indicator.on_advance` after the bars before a minute have all closed;
* :meth:`Indicator.on_quality` for data-quality events (gaps, late trades,
  rejected lines).

A *book indicator* sets ``consumes = "books"`` and is fed by the instrument's
order-book stream instead (SPEC section 10): :meth:`Indicator.on_book` once
per closed minute with the book at that minute's close (a
:class:`~indicator_core.streams.book_stream.BookMinute`), and :meth:`on_quality`
with the book's events (``seq_gap``, ``checksum``, ``crossed``, ``resync``,
``reject``).  Its state file and cursor are those of the book stream, so a
stalled book recording never holds back the trade indicators, and the other
way round.

Output goes through ``emit(stream, record)``; the host serializes the record
with orjson and appends it to ``{stream}.jsonl`` in the indicator's folder
(SPEC section 6).  At every commit the host asks for :meth:`get_state`, and on
the next run hands it back to :meth:`set_state` before anything else, so all
that the indicator needs to continue must be in that JSON-able dict.

An indicator may instead read other indicators' records (SPEC section 12): it
sets ``consumes = "records"`` (the ``records`` input kind), declares them with
:meth:`Indicator.inputs` and receives them through
:meth:`Indicator.on_records`, minute by minute, once every producer has
committed them; such an indicator gets no trades, bars or advances.  See
:class:`Input` and :mod:`indicator_core.runtime.records`.

An output whose records are signals (each one something a trader or a bot may
act on) says so on the class: ``signals = (Signal(...),)``, see
:class:`Signal`.  Notifiers deliver its committed records, ``status`` counts
their deliveries, ``study`` scores and ``chart`` marks those with a direction;
none of them knows the indicator by name.

Determinism is the contract: given the same calls, an indicator must emit the
same records, whatever the batch sizes and however the input was cut into
runs (SPEC section 8).  Use :mod:`indicator_core.numbers` for arithmetic:
under the engine, a Decimal operation that would round raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

from pydantic import BaseModel, ConfigDict

from .instruments import Instrument

if TYPE_CHECKING:  # the events' classes, loaded with numpy by what delivers them: a config needs neither
    from .bar_run import BarRun
    from .bars import Bar
    from .trade_batch import TradeBatch
    from .streams.book_stream import BookMinute
    from .streams.derivs_batch import DerivsMinutes
    from .streams.derivs_stream import DerivsMinute

Emit = Callable[[str, Any], None]  # a record (a dict), or the JsonLines of many (jsonlines.json_lines)
"""``emit(stream, record)``: append one record to the named output stream."""


def record_minute(record: dict[str, Any]) -> int:
    """The minute of a record's ``timestamp_utc`` (``2026-11-23T14:05:00Z``): the default :attr:`Input.minute`."""
    from .timeutil import minute_of_iso

    return minute_of_iso(record["timestamp_utc"])


@dataclass(frozen=True)
class Input:
    """One output of another indicator that a record-consuming indicator reads.

    ``indicator`` and ``stream`` name the producer and its output
    (``derived/{indicator}/.../{stream}.jsonl``); the records arrive under
    ``key`` (default: the stream name).

    ``minute(record)`` says which minute a record belongs to (default: its
    ``timestamp_utc``).  The producer must never write a record for a minute
    it has already *passed* (see below), so the minutes of its records never
    go back.

    How far a producer has passed is read from its committed state: every
    minute up to its ``last_bar`` (trade-derived indicators record it at each
    commit); and, when ``one_per_minute`` is true (one record per closed
    minute, as ``volume_1m`` and ``buckets_1m``), every minute up to that of
    its last committed record.  Minutes before a producer's first record
    count as passed once it has written one.

    A ``required`` input holds the consumer back until it has passed a
    minute.  An optional one holds it back only while its producer is
    enabled and has started for the instrument (its state file exists) or
    ``present(vault, key, config)`` says it will (e.g. book files exist);
    otherwise it holds nothing back: the records it did commit (a producer
    disabled later) are delivered with their minutes, and minutes past them
    have none.
    """

    indicator: str
    stream: str
    key: Optional[str] = None
    required: bool = True
    minute: Callable[[dict[str, Any]], int] = record_minute
    one_per_minute: bool = True
    present: Optional[Callable[[Any, Any, Any], bool]] = None
    # another instrument's output ("exchange/market/INST_ID"), for an aggregate's members; None: this instrument's
    instrument: Optional[str] = None

    @property
    def name(self) -> str:
        return self.key or self.stream


@dataclass(frozen=True)
class Signal:
    """An output whose records are signals: what notifiers deliver and ``study`` can score (SPEC 12, 13).

    Declared by its indicator (``Indicator.signals``), so the host never keeps a
    list of which plugins make signals.  ``output`` is the output stream
    (``{output}.jsonl``); ``time_field`` the record field that orders its
    records in time; ``id_fields`` the record fields that, after the instrument
    id, make each record's signal id (``{inst_id}|{field}|...``, unique per
    record, the same every time the record is delivered); ``name`` what a
    notifier's ``streams = [...]`` calls it (default: the indicator's name);
    ``direction_field``, where its records carry a trade direction
    (``"long"``/``"short"``, or +1/-1), lets ``indicators study`` score it.

    A declaration that cannot work is refused when the class is defined
    (``TypeError``): an empty name, no id field, or ``id_fields`` given as one
    string (``("trade_id")`` without its comma) rather than a tuple of them.
    """

    output: str
    time_field: str
    id_fields: tuple[str, ...]
    name: Optional[str] = None
    direction_field: Optional[str] = None

    def __post_init__(self) -> None:
        def text(what: str, value: Any) -> None:
            if not isinstance(value, str) or not value:
                raise TypeError(f"Signal {what} must be a non-empty string, got {value!r}")

        text("output", self.output)
        text("time_field", self.time_field)
        if isinstance(self.id_fields, str):
            raise TypeError(f"Signal id_fields must be a tuple of record fields, got the string {self.id_fields!r}: "
                            f"write ({self.id_fields!r},)")
        fields = tuple(self.id_fields)
        if not fields:
            raise TypeError("Signal id_fields must name at least one record field (the signal id would be the "
                            "instrument alone)")
        for f in fields:
            text("id_fields entry", f)
        object.__setattr__(self, "id_fields", fields)
        if self.name is not None:
            text("name", self.name)
        if self.direction_field is not None:
            text("direction_field", self.direction_field)


class Params(BaseModel):
    """Base for an indicator's parameters (the ``[plugins.NAME]`` table less ``enabled``).

    Unknown keys are refused, so a typo in the config file is an error, not a
    silently ignored setting.  A model's validator is built when it first
    validates (``defer_build``): a disabled indicator whose table holds nothing
    to check never pays for it (:func:`indicator_core.config.plugin_settings`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Indicator:
    """Base class of a trade-consuming indicator; see the module docstring.

    Subclasses set ``name`` (the config key and output folder, lowercase),
    ``version`` and ``Params``, and override the ``on_*`` methods they need.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    Params: ClassVar[type[Params]] = Params
    consumes: ClassVar[str] = "trades"
    # whether it runs without `enabled = true` under [plugins.NAME] (an indicator that costs much of the pass,
    # like the footprint, waits to be asked for)
    enabled_by_default: ClassVar[bool] = True
    """The input kind that feeds it: ``"trades"``, ``"books"``, or a kind a plugin registers."""
    signals: ClassVar[tuple[Signal, ...]] = ()
    """Its outputs whose records are signals (:class:`Signal`), an extension point of their own.

    Each declared output becomes a *signal stream*: a ``[notify.NAME]`` table
    may list it in ``streams = [...]`` (by :attr:`Signal.name`, default the
    indicator's ``name``; a name not declared by any installed indicator is
    refused when the config is checked), and every committed record of it is
    delivered with ``inst_id``, ``stream`` and ``signal_id`` added.  The
    built-in declarations::

        # confluence: stream "confluence", id {inst_id}|{timestamp_utc}|{level}, scored by study
        signals = (Signal("signals", "timestamp_utc", ("timestamp_utc", "level"), direction_field="direction"),)
        # whales: stream "whales", id {inst_id}|{trade_id}
        signals = (Signal("whales", "ts_utc", ("trade_id",)),)

    The id fields must make the id unique within the instrument and the same
    on every rebuild of the output (receivers drop repeats by it): an event
    without an id of its own from the venue (a liquidation) writes a field
    that tells equal-looking records of one instant apart and names it there.
    ``time_field`` orders the records when an output was rebuilt since the
    last delivery.  The output is read where the indicator writes it
    (its ``folder``, default its ``name``), and only as far as it is committed.
    """
    scope: ClassVar[str] = "instrument"
    """``"instrument"``: it runs for each instrument; ``"aggregate"``: for each ``[aggregates.NAME]`` of the
    config (SPEC section 16), its params' ``members`` set to the aggregate's, reading their records."""
    folder: ClassVar[Optional[str]] = None
    """The folder of its outputs and state under ``derived/`` and ``state/`` (default: its ``name``); an
    aggregate's volume analyzer writes where the volume analyzer does."""
    trades_by_minute: ClassVar[bool] = True
    """Whether :meth:`on_trades` gets one minute at a time (the default).

    ``False`` lets the host hand over larger batches: all the accepted trades
    of a chunk of input at once, many minutes in arrival order, before the
    first bar among them closes.  Every trade still arrives once, in order,
    and before :meth:`on_bar` of its minute, but possibly before bars of
    earlier minutes close, and the batch boundaries depend on how the input
    was cut.  It suits an indicator that only sums trades into their minutes
    (the volume analyzer's whale trades): one numpy pass per chunk instead of
    one per minute.  An indicator whose reaction to a trade depends on bars
    closed before it (a wick touched by a later trade) keeps the default.
    """

    def __init__(self, instrument: Instrument, params: Params) -> None:
        self.instrument = instrument
        self.params = params

    def outputs(self) -> list[str]:
        """Names of the output streams this instance writes, e.g. ``["volume_1m"]``."""
        return []

    def on_trades(self, trades: TradeBatch, emit: Emit) -> None:
        """Accepted trades of one minute, in arrival order (``trades.ts // 60000`` is constant).

        With ``trades_by_minute = False``: accepted trades of one or more minutes, see
        :attr:`trades_by_minute`.
        """

    def on_bar(self, bar: Bar, emit: Emit) -> None:
        """A one-minute bar has closed: it will receive no more trades."""

    def on_empty_bars(self, first: int, count: int, price: Decimal, emit: Emit) -> None:
        """``count`` filled minutes without a trade, ``first`` to ``first + count - 1``, all at ``price``.

        The same as :meth:`on_bar` for each of them with the bar
        ``Bar.empty_at(inst_id, minute, price)`` (no trade, no taint), which is
        what this default does.  An indicator may override it to handle a
        quiet stretch at once: on a quiet instrument most minutes are empty.
        """
        from .bars import Bar

        inst_id = self.instrument.inst_id
        for minute in range(first, first + count):
            self.on_bar(Bar.empty_at(inst_id, minute, price), emit)

    def on_bars(self, bars: "BarRun", emit: Emit) -> None:
        """Closed minutes as a run of columns: consecutive closed bars and filled empty minutes, in order.

        An indicator that overrides it gets its bars this way *instead of*
        :meth:`on_bar` and :meth:`on_empty_bars`, so it can compute a run of
        minutes with numpy and write their records with
        :func:`indicator_core.json_lines` (a record a minute built as a dict
        costs ~10 µs).  The host keeps the closed bars back and hands them
        over before any other hook of the indicator is called (its
        ``on_trades`` of a later minute, ``on_advance``, ``on_quality``),
        before every commit, and at least every 1,024 minutes: the calls come
        in the order ``on_bar`` would have had them, only grouped, and the
        grouping depends on how the input was cut (the records must not).
        A run implies ``on_advance`` to the minute after its last: that call
        is not made (an indicator with ``on_advance`` makes it itself).
        See :class:`indicator_core.BarRun`.  This default calls :meth:`on_bar`
        and :meth:`on_empty_bars` for the run's minutes, in order, then
        :meth:`on_advance`.
        """
        for item in bars.items():
            if type(item) is tuple:
                self.on_empty_bars(*item, emit)
            else:
                self.on_bar(item, emit)
        self.on_advance(int(bars.minute[-1]) + 1, emit)

    def on_advance(self, minute: int, emit: Emit) -> None:
        """Every bar before ``minute`` has closed; the stream is now in ``minute``."""

    def on_quality(self, event: dict[str, Any], emit: Emit) -> None:
        """A data-quality event: ``{"event": "gap" | "late" | "reject", ...}``.

        Gap and late events arrive in stream order among the bar and trade
        calls; reject events (a line that could not be read) arrive in line
        order among themselves, before the trades of the same chunk.
        """

    def on_quality_events(self, events: Any, emit: Emit) -> None:
        """Several data-quality events of one kind at once, in order, as columns: a chunk's late trades
        (:class:`indicator_core.LateTrades`) and refused lines (``RejectedLines``), the gaps a bar's close found
        (``Gaps``); ``events.event`` names the kind.  This default calls :meth:`on_quality` with each one's dict (``events.events()``), so an
        indicator that implements only that gets every event as before; one that writes them can take the
        columns instead."""
        for event in events.events():
            self.on_quality(event, emit)

    # --- record consumers (SPEC section 12) -----------------------------------------------
    @classmethod
    def inputs(cls, params: Params) -> list[Input]:
        """The other indicators' outputs this indicator reads; ``[]`` (the default) for a trade indicator.

        Called with the configured parameters (never with an instrument): the
        host uses it to run the indicator after its producers, to refuse a
        config whose producer does not write the named stream, and to reset
        the indicator when a producer is reset.
        """
        return []

    @classmethod
    def resolve_params(cls, params: Params, others: dict[str, Params]) -> Params:
        """Adapt the configured parameters to those of the other installed indicators (``others``, by name).

        Called for a record consumer before :meth:`inputs` and before the
        instance is made; the result is what the fingerprint and the state
        record.  E.g. ``confluence`` follows the timeframe of ``wicks`` unless
        its own is set.  The default returns ``params`` unchanged.
        """
        return params

    def on_records(self, minute: int, records: dict[str, list[dict[str, Any]]], emit: Emit) -> None:
        """The committed records of ``minute`` from every input, by :attr:`Input.name`, in file order.

        Called for each minute that holds a record of some input, in
        ascending order, once every input that counts has passed it; an input
        without a record for the minute has an empty list.  Everything the
        indicator emits here is final: it is committed with the positions
        read, so a cut run delivers the same minutes again from there.
        """

    def on_book(self, minute: "BookMinute", emit: Emit) -> None:
        """Book indicators (``consumes = "books"``): the book as of the close of ``minute.minute``.

        Called for every minute from the instrument's first push on, in order,
        valid or not (``minute.valid``, ``minute.taint``).  Read the levels
        during the call only.
        """

    def on_derivs(self, minute: "DerivsMinute", emit: Emit) -> None:
        """Derivatives indicators (``consumes = "derivs"``): what the derivatives said at the close of ``minute.minute``.

        Called for every minute from the instrument's first derivatives push
        on, in order, once the minute is closed (and, where the instrument
        has trades and the volume analyzer runs, once ``volume_1m`` has passed
        it: ``minute.close``).  See :class:`indicator_core.streams.derivs_stream.DerivsMinute`.
        """

    def on_derivs_minutes(self, minutes: "DerivsMinutes", emit: Emit) -> None:
        """Derivatives indicators: a run of closed minutes at once, as columns (what the stream closed while
        reading a chunk; a day's run is ~1,440 minutes).  See :class:`indicator_core.DerivsMinutes`.

        Override it to work on columns (the built-in ``derivs`` and ``liquidations`` write their records with
        :func:`indicator_core.json_lines`); the default calls :meth:`on_derivs` for each minute, in order.
        """
        for minute in minutes.events():
            self.on_derivs(minute, emit)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue later, as JSON-able data."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned in an earlier run."""
