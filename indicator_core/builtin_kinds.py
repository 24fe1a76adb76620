"""The built-in input kinds, registered through the same hook a plugin's kind uses."""

from __future__ import annotations

from typing import Callable

from .hookspecs import hookimpl
from .streams.base import StreamKind
from .streams.books import BOOKS
from .streams.derivs import DERIVS
from .streams.records import RECORDS
from .streams.trades import TRADES


@hookimpl
def register_input_kinds(register: Callable[[StreamKind], None]) -> None:
    register(TRADES)  # the main input: its folder's message is the one a vault without any input gets
    register(BOOKS)
    register(DERIVS)  # funding, open interest, liquidations (SPEC section 17)
    register(RECORDS)  # other indicators' committed records (SPEC section 12), after the file kinds
