"""Event fan-out: a stream's events to the consumers that are in step with it, through one call path.

A stream (of any input kind) hands its events to a sink.  :class:`Dispatch`
is the runtime's sink: :meth:`Dispatch.deliver` calls one indicator hook on
every consumer that implements it (a consumer whose class does not override
the hook is never called for it), and an exception inside an indicator is
that indicator's failure: it is taken out for the rest of the pass, its
outputs cut back to its last commit, and the others go on.

The named methods (``trades``, ``bar``, ``book``, ...) are the sink protocol
the built-in kinds speak (:class:`indicator_core.streams.trade_stream.Sink`,
:class:`indicator_core.streams.book_stream.BookSink`); each is one call of
:meth:`deliver`.  A new input kind's stream calls :meth:`deliver` with the
hook its indicators implement.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from ..indicator import Indicator
from .consumer import Consumer
from .summary import Failure, PluginFailure

# A hook whose default implementation calls another: a consumer overriding either is routed the first
# (Indicator.on_empty_bars calls on_bar once for each minute, on_derivs_minutes on_derivs).
_VIA = {"on_empty_bars": ("on_bar",), "on_derivs_minutes": ("on_derivs",)}
# Routes that are a subset of one hook's consumers: (hook, which of them)
_SUBSETS: dict[str, tuple[str, Callable[[type[Indicator]], bool]]] = {
    "on_trades": ("on_trades", lambda cls: bool(cls.trades_by_minute)),  # a minute at a time
    "on_trades:chunk": ("on_trades", lambda cls: not cls.trades_by_minute),  # a chunk at a time
}


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

    def add(self, c: Consumer) -> None:
        self.all.append(c)
        self.routes.clear()  # built again for the consumers now in step

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
        for c, hook in self.route(route):
            try:
                hook(*args, c.emit)
            except Exception as exc:  # the indicator's own code: a third-party bug must not stop the others
                self.fail(c, exc, _SUBSETS.get(route, (route,))[0])
        if minute is not None:
            for c in self.all:
                c.last_bar = minute

    # -- the sink protocol of the built-in kinds --------------------------------------------------------------------

    def quality(self, event: dict[str, Any]) -> None:
        self.deliver("on_quality", event)

    def chunk_trades(self, batch: Any) -> None:
        """A chunk's trades, to the consumers that take them a chunk at a time (``trades_by_minute = False``)."""
        self.deliver("on_trades:chunk", batch)

    def trades(self, batch: Any) -> None:
        """One minute's trades, to the consumers that take them a minute at a time."""
        self.deliver("on_trades", batch)

    def bar(self, bar: Any) -> None:
        self.deliver("on_bar", bar, minute=bar.minute)

    def empty_bars(self, first: int, count: int, price: Decimal) -> None:
        """A run of filled empty minutes: :meth:`Indicator.on_empty_bars` of each consumer in turn (the
        consumers are independent, so the order across them is free)."""
        self.deliver("on_empty_bars", first, count, price, minute=first + count - 1)

    def advance(self, minute: int) -> None:
        self.deliver("on_advance", minute)

    def book(self, minute: Any) -> None:
        self.deliver("on_book", minute, minute=minute.minute)
