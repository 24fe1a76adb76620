"""Records written from columns: the JSON lines of a whole batch at once.

An indicator that writes a record per trade (``whales``) or per liquidation
would build a dict and format a few decimals for each one, about 10 µs of
Python a record: on a day where one trade in ten is a whale that is more than
the whole pass.  :func:`json_lines` takes the columns instead and gives the
lines, byte for byte what ``orjson.dumps`` gives for the dicts, written by the
compiled kernel (``_native_json.c``) where it is built; the pure path formats
the dicts one by one, and is the reference the tests hold the kernel to.
Hand the result to ``emit`` like a record: the writer appends it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import orjson

from . import native
from .numbers import fmt, to_dec
from .timeutil import iso_ms

_KERNEL = native.load("json")


class JsonLines(bytes):
    """Complete JSON lines (each ending in ``\\n``), one record each, to be written as they are."""

    __slots__ = ()


@dataclass(frozen=True)
class Field:
    """One field of the records: its name, and how its column is written.

    ``kind``: ``"iso_ms"`` (int64 milliseconds, as ``"2024-11-23T00:00:40.064Z"``), ``"decimal"``
    (int64 mantissas with ``scale``, plainly, as ``fmt``), ``"int"`` (int64, as digits; ``quoted`` as a
    string), ``"choice"`` (booleans: ``choices[0]`` where true), ``"text"`` (a sequence of str).
    """

    name: str
    kind: str
    column: Any
    scale: int = 0
    choices: tuple[str, str] = ("", "")
    quoted: bool = True


JsonField = Field  # its name in the public API (pydantic has a Field of its own)

_CODES = {"iso_ms": b"T", "decimal": b"D", "int": b"I", "choice": b"B", "text": b"S"}


def json_lines(fields: Sequence[Field], n: int) -> JsonLines:
    """The ``n`` records whose values are the fields' columns, as JSON lines (every value a string but an
    unquoted ``int``)."""
    if n == 0:
        return JsonLines(b"")
    if _KERNEL is not None:
        got = _compiled(fields, n)
        if got is not None:
            return JsonLines(got)
    return JsonLines(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records(fields, n)))


def records(fields: Sequence[Field], n: int) -> list[dict[str, Any]]:
    """The records as dicts (the pure path, and the reference of the compiled one)."""
    cols = []
    for f in fields:
        values = f.column.tolist() if isinstance(f.column, np.ndarray) else list(f.column)
        if f.kind == "iso_ms":
            cols.append([iso_ms(int(v)) for v in values[:n]])
        elif f.kind == "decimal":
            cols.append([fmt(to_dec(int(v), f.scale)) for v in values[:n]])
        elif f.kind == "int":
            cols.append([str(int(v)) if f.quoted else int(v) for v in values[:n]])
        elif f.kind == "choice":
            cols.append([f.choices[0] if v else f.choices[1] for v in values[:n]])
        else:
            cols.append([str(v) for v in values[:n]])
    names = [f.name for f in fields]
    return [dict(zip(names, row)) for row in zip(*cols)]


@lru_cache(maxsize=64)
def _plan(shape: tuple[tuple[str, str, bool], ...]) -> tuple[tuple[bytes, ...], bytes]:
    """The literal runs and the kernel's kind codes of records of fields ``(name, kind, quoted)`` (made once per
    shape: an indicator writes a few records a batch, thousands of batches a day)."""
    literals, kinds = [], b""
    head = b"{"
    for k, (name, kind, quoted) in enumerate(shape):
        quote = b'"' if kind != "int" or quoted else b""
        head += (b"," if k else b"") + orjson.dumps(name) + b":" + quote
        literals.append(head)
        head = quote
        kinds += _CODES[kind]
    literals.append(head + b"}\n")
    return tuple(literals), kinds


def _compiled(fields: Sequence[Field], n: int) -> bytes | None:
    literals, kinds = _plan(tuple((f.name, f.kind, f.quoted) for f in fields))
    columns, extras = [], []
    for f in fields:
        if f.kind == "text":
            columns.append(f.column if isinstance(f.column, list) else list(f.column))
            extras.append(None)
            continue
        col = np.ascontiguousarray(f.column, dtype=np.uint8 if f.kind == "choice" else None)
        if f.kind != "choice" and col.dtype != np.int64:
            return None  # Python ints past int64, or another dtype: the pure path
        columns.append(col)
        extras.append(f.scale if f.kind == "decimal" else
                      _choices(f.choices) if f.kind == "choice" else None)
    try:
        return _KERNEL.json_lines(literals, kinds, tuple(columns), tuple(extras), n)
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _choices(choices: tuple[str, str]) -> tuple[bytes, bytes]:
    return tuple(orjson.dumps(c)[1:-1] for c in choices)  # type: ignore[return-value]
