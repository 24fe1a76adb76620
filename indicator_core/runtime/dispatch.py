"""Event fan-out: a stream's events to the consumers that are in step with it, through one call path.

A stream (of any input kind) hands its events to a sink.  :class:`Dispatch`
is the runtime's sink: :meth:`Dispatch.deliver` calls one indicator hook on
every consumer that implements it (a consumer whose class does not override
the hook is never called for it), and an exception inside an indicator is
that indicator's failure: it is taken out for the rest of the pass, its
outputs cut back to its last commit, and the others go on.

A consumer whose indicator implements :meth:`Indicator.on_bars` gets its
closed bars as runs of columns: the bars and filled minutes wait here
(``pending``) and go to it as one :class:`~indicator_core.bar_run.BarRun`
before any other of its hooks is called (so its calls come in the order
``on_bar`` would have had them), before a commit (:meth:`Dispatch.flush`),
and every :data:`RUN_ROWS` minutes.  The ``on_advance`` to the minute right
after the waiting ones is not a cut: a run implies it (the indicator
advances itself to the minute after a run's last).

The named methods (``trades``, ``bar``, ``book``, ...) are the sink protocol
the built-in kinds speak (:class:`indicator_core.streams.trade_stream.Sink`,
:class:`indicator_core.streams.book_stream.BookSink`); each is one call of
:meth:`deliver`.  A new input kind's stream calls :meth:`deliver` with the
hook its indicators implement.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from ..bar_run import BarRun
from ..indicator import Indicator
from .consumer import Consumer
from .summary import Failure, PluginFailure

# A hook whose default implementation calls another: a consumer overriding either is routed the first
# (Indicator.on_empty_bars calls on_bar once for each minute, on_derivs_minutes on_derivs).
_VIA = {"on_empty_bars": ("on_bar",), "on_derivs_minutes": ("on_derivs",), "on_quality_events": ("on_quality",)}
# Routes that are a subset of one hook's consumers: (hook, which of them)
_SUBSETS: dict[str, tuple[str, Callable[[type[Indicator]], bool]]] = {
    "on_trades": ("on_trades", lambda cls: bool(cls.trades_by_minute)),  # a minute at a time
    "on_trades:chunk": ("on_trades", lambda cls: not cls.trades_by_minute),  # a chunk at a time
    "on_bar:each": ("on_bar", lambda cls: not implements(cls, "on_bars")),  # a bar at a time
    "on_empty_bars:each": ("on_empty_bars", lambda cls: not implements(cls, "on_bars")),
    "on_advance:each": ("on_advance", lambda cls: not implements(cls, "on_bars")),
}
RUN_ROWS = 1024  # the most minutes a run of bars waits for (bounds its memory and its records' delay)


def implements(cls: type[Indicator], hook: str) -> bool:
    """Whether an indicator class overrides ``hook`` (or a hook whose default calls it)."""
    return any(getattr(cls, h, None) is not getattr(Indicator, h, None) for h in (hook, *_VIA.get(hook, ())))


class Dispatch:
    """Delivers the stream's events to the consumers that are in step with it."""

    def __init__(self) -> None:
        self.all: list[Consumer] = []
        self.routes: dict[str, list[tuple[Consumer, Callable[..., Any]]]] = {}  # route -> (consumer, bound hook)
        self.failures: list[Failure] = []  # indicators that raised, taken out of the dispatch
        self.dropped: list[Consumer] = []
        self.pending: list[Any] = []  # closed bars and (first, count, price) runs for the on_bars consumers
        self.pending_rows = 0
        self.pending_end = 0  # the minute after the last waiting one
        self.cuts: dict[str, bool] = {}  # route -> whether it reaches an on_bars consumer (which flushes first)

    def add(self, c: Consumer) -> None:
        self.flush()  # the bars so far are the others': the new consumer is in step from here
        self.all.append(c)
        self.routes.clear()  # built again for the consumers now in step
        self.cuts.clear()

    def route(self, name: str) -> list[tuple[Consumer, Callable[..., Any]]]:
        """The consumers of a route (a hook name, or one of :data:`_SUBSETS`), with their bound hook."""
        found = self.routes.get(name)
        if found is None:
            hook, which = _SUBSETS.get(name, (name, None))
            found = self.routes[name] = [
                (c, getattr(c.indicator, hook)) for c in self.all
                if implements(type(c.indicator), hook) and (which is None or which(type(c.indicator)))
            ]
        return found

    def fail(self, c: Consumer, exc: BaseException, hook: str) -> None:
        """Take ``c`` out for the rest of the run, its outputs cut back to its last commit.

        The routes are replaced, not changed in place, so a loop over one of
        them goes on with the consumers after ``c``.  Its state file is left as
        it was: the next run finds it behind the others and catches it up.
        """
        self.all = [x for x in self.all if x is not c]
        self.routes = {name: [(x, f) for x, f in cs if x is not c] for name, cs in self.routes.items()}
        self.cuts.clear()
        self.dropped.append(c)
        c.cut_back()
        failure = exc if isinstance(exc, PluginFailure) else PluginFailure(c, exc, hook)
        self.failures.append(failure.failure)

    def deliver(self, route: str, *args: Any, minute: int | None = None) -> None:
        """Call ``route``'s hook with ``(*args, emit)`` on each of its consumers.

        With ``minute``, the event closes that minute: every consumer in step
        (those without the hook too) records it as its ``last_bar``, which
        record consumers read as how far it has passed (SPEC section 12).
        """
        if self.pending and self._cuts(route):
            self.flush()
        self._call(route, args)
        if minute is not None:
            for c in self.all:
                c.last_bar = minute

    def _call(self, route: str, args: tuple[Any, ...]) -> None:
        for c, hook in self.route(route):
            try:
                hook(*args, c.emit)
            except Exception as exc:  # the indicator's own code: a third-party bug must not stop the others
                self.fail(c, exc, _SUBSETS.get(route, (route,))[0])

    def _cuts(self, route: str) -> bool:
        """Whether ``route`` reaches a consumer that takes runs of bars: its waiting bars go first."""
        cut = self.cuts.get(route)
        if cut is None:
            # a chunk's trades may come before the bars of earlier minutes close (Indicator.trades_by_minute)
            cut = self.cuts[route] = route != "on_trades:chunk" and any(
                implements(type(c.indicator), "on_bars") for c, _ in self.route(route))
        return cut

    def flush(self) -> None:
        """The waiting bars, as one run, to the consumers that take runs (:meth:`Indicator.on_bars`)."""
        if not self.pending:
            return
        items, self.pending, self.pending_rows = self.pending, [], 0
        takers = self.route("on_bars")
        if takers:
            self._call("on_bars", (BarRun.of(items, takers[0][0].indicator.instrument.inst_id),))

    def discard_pending(self) -> None:
        """Forget the waiting bars (a pass that stopped: the next one starts again from the last commit)."""
        self.pending, self.pending_rows = [], 0

    # -- the sink protocol of the built-in kinds --------------------------------------------------------------------

    def quality(self, event: dict[str, Any]) -> None:
        self.deliver("on_quality", event)

    def quality_events(self, events: Any) -> None:
        """Several quality events of one kind, as columns (:meth:`Indicator.on_quality_events`)."""
        self.deliver("on_quality_events", events)

    def chunk_trades(self, batch: Any) -> None:
        """A chunk's trades, to the consumers that take them a chunk at a time (``trades_by_minute = False``)."""
        self.deliver("on_trades:chunk", batch)

    def trades(self, batch: Any) -> None:
        """One minute's trades, to the consumers that take them a minute at a time."""
        self.deliver("on_trades", batch)

    def takes_minute_trades(self) -> bool:
        return bool(self.route("on_trades"))

    def takes_runs_only(self) -> bool:
        """Whether no consumer takes closed minutes one at a time (``on_bar``, ``on_empty_bars`` or ``on_advance``
        of an indicator without ``on_bars``): then a chunk's closed minutes may come at once (:meth:`closed`)."""
        return not (self.route("on_bar:each") or self.route("on_empty_bars:each") or self.route("on_advance:each"))

    def closed(self, items: list[Any], rows: int, last: int) -> None:
        """A chunk's closed bars and ``(first, count, price)`` stretches of filled minutes, ``rows`` minutes in
        all, in order, ``last`` the last of them (:meth:`takes_runs_only`): what :meth:`bar`, :meth:`empty_bars`
        and :meth:`advance` to the minute after each would do, for consumers that take runs only."""
        if self.route("on_bars"):
            self.pending += items
            self.pending_rows += rows
            self.pending_end = last + 1
            if self.pending_rows >= RUN_ROWS:
                self.flush()
        for c in self.all:
            c.last_bar = last

    def bar(self, bar: Any) -> None:
        self._wait(bar, 1, bar.minute + 1)
        self.deliver("on_bar:each", bar, minute=bar.minute)

    def empty_bars(self, first: int, count: int, price: Decimal) -> None:
        """A run of filled empty minutes: :meth:`Indicator.on_empty_bars` of each consumer in turn (the
        consumers are independent, so the order across them is free)."""
        self._wait((first, count, price), count, first + count)
        self.deliver("on_empty_bars:each", first, count, price, minute=first + count - 1)

    def _wait(self, item: Any, rows: int, end: int) -> None:
        """Keep a closed bar or a run of filled minutes for the consumers that take runs of bars."""
        if self.route("on_bars"):
            self.pending.append(item)
            self.pending_rows += rows
            self.pending_end = end
            if self.pending_rows >= RUN_ROWS:
                self.flush()

    def advance(self, minute: int) -> None:
        if self.pending and minute == self.pending_end:  # the waiting run implies it for those that take runs
            self.deliver("on_advance:each", minute)
        else:
            self.deliver("on_advance", minute)

    def book(self, minute: Any) -> None:
        self.deliver("on_book", minute, minute=minute.minute)
