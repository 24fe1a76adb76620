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
from .numbers import fmt, fmt_signed, to_dec
from .timeutil import iso_ms

_KERNEL = native.load("json")


class JsonLines(bytes):
    """Complete JSON lines (each ending in ``\\n``), one record each, to be written as they are."""

    __slots__ = ()


@dataclass(frozen=True)
class Field:
    """One field of the records: its name, and how its column is written.

    ``kind``: ``"iso_ms"`` (int64 milliseconds, as ``"2024-11-23T00:00:40.064Z"``), ``"decimal"``
    (int64 mantissas with ``scale``, plainly, as ``fmt``; ``plus``: as ``fmt_signed``), ``"int"`` (int64, as
    digits; ``quoted`` as a string), ``"choice"`` (booleans: ``choices[0]`` where true), ``"bool"`` (booleans,
    as JSON ``true``/``false``), ``"text"`` (a sequence of str), ``"raw"`` (a sequence of bytes: JSON text
    exactly as ``orjson.dumps`` writes the value, put in as it is: a nested object, a number that is
    sometimes a float).  ``null``: a boolean column, true where the value is ``null`` (that row's value in
    ``column`` is not read).
    """

    name: str
    kind: str
    column: Any
    scale: int = 0
    choices: tuple[str, str] = ("", "")
    quoted: bool = True
    null: Any = None
    plus: bool = False


JsonField = Field  # its name in the public API (pydantic has a Field of its own)

_CODES = {"iso_ms": b"T", "decimal": b"D", "int": b"I", "choice": b"B", "bool": b"L", "text": b"S", "raw": b"R"}
_QUOTED = {"iso_ms": True, "decimal": True, "choice": True, "text": True, "bool": False, "raw": False}


def json_lines(fields: Sequence[Field], n: int) -> JsonLines:
    """The ``n`` records whose values are the fields' columns, as JSON lines (every value a string but an
    unquoted ``int``, a ``bool`` and a ``raw`` value)."""
    if n == 0:
        return JsonLines(b"")
    if _KERNEL is not None:
        got = _compiled(fields, n)
        if got is not None:
            return JsonLines(got)
    return JsonLines(_pure(fields, n))


def _quoted(f: Field) -> bool:
    return _QUOTED.get(f.kind, f.quoted)


def per_distinct(keys: Any, make: Any) -> list[Any]:
    """``make(*key)`` for each row of ``keys`` (a 1-d or 2-d array, or a list of tuples), worked out once per
    distinct key: a column whose values repeat (a funding rate, a taint) written as text or raw JSON."""
    if isinstance(keys, np.ndarray) and keys.dtype != object:
        if not len(keys):
            return []
        if keys.ndim == 1:  # (np.unique by rows, axis=0, sorts them as records: eight times slower)
            uniq, inverse = np.unique(keys, return_inverse=True)
            made = [make(v) for v in uniq.tolist()]
        else:
            uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
            made = [make(*row) for row in uniq.tolist()]
        return [made[i] for i in inverse.ravel().tolist()]
    seen: dict[Any, Any] = {}
    out = []
    for key in keys:
        key = key if isinstance(key, tuple) else (key,)
        got = seen.get(key)
        if got is None and key not in seen:
            got = seen[key] = make(*key)
        out.append(got)
    return out


def records(fields: Sequence[Field], n: int) -> list[dict[str, Any]]:
    """The records as dicts (the pure path, and the reference of the compiled one)."""
    cols = []
    for f in fields:
        values = f.column.tolist() if isinstance(f.column, np.ndarray) else list(f.column)
        values = values[:n]
        if f.kind == "iso_ms":
            col = [iso_ms(int(v)) for v in values]
        elif f.kind == "decimal":
            show = fmt_signed if f.plus else fmt
            col = [show(to_dec(int(v), f.scale)) for v in values]
        elif f.kind == "int":
            col = [str(int(v)) if f.quoted else int(v) for v in values]
        elif f.kind == "choice":
            col = [f.choices[0] if v else f.choices[1] for v in values]
        elif f.kind == "bool":
            col = [bool(v) for v in values]
        elif f.kind == "raw":
            col = [orjson.loads(v) for v in values]
        else:
            col = [str(v) for v in values]
        if f.null is not None:
            null = f.null.tolist() if isinstance(f.null, np.ndarray) else list(f.null)
            col = [None if z else v for v, z in zip(col, null)]
        cols.append(col)
    names = [f.name for f in fields]
    return [dict(zip(names, row)) for row in zip(*cols)]


def _pure(fields: Sequence[Field], n: int) -> bytes:
    """:func:`json_lines` without the kernel: each column as JSON texts, put into a line template with ``%``
    (what :func:`records` and ``orjson.dumps`` give, without a dict and a float of work a value)."""
    cols = [_texts(f, n) for f in fields]
    template = "{" + ",".join(orjson.dumps(f.name).decode().replace("%", "%%") + ":%s" for f in fields) + "}\n"
    return "".join([template % row for row in zip(*cols)]).encode()


def _texts(f: Field, n: int) -> list[str]:
    """The JSON text of each value of ``f``'s column (``null`` where its mask is set)."""
    if f.kind == "decimal" and f.scale > 0 and n >= AT_ONCE and isinstance(f.column, np.ndarray) \
            and f.column.dtype == np.int64:
        return _nulls(decimal_texts_at_once(f.column[:n], f.scale, f.plus), f)
    values = f.column.tolist() if isinstance(f.column, np.ndarray) else list(f.column)
    values = values[:n]
    if f.kind == "iso_ms":
        col = ['"' + iso_ms(int(v)) + '"' for v in values]
    elif f.kind == "decimal":
        col = _decimal_texts([int(v) for v in values], f.scale, f.plus)
    elif f.kind == "int":
        col = ['"%d"' % v for v in values] if f.quoted else ["%d" % v for v in values]
    elif f.kind == "choice":
        yes, no = (orjson.dumps(c).decode() for c in f.choices)
        col = [yes if v else no for v in values]
    elif f.kind == "bool":
        col = ["true" if v else "false" for v in values]
    elif f.kind == "raw":
        col = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    else:
        seen: dict[str, str] = {}
        col = []
        for v in values:
            text = seen.get(v)
            if text is None:
                text = seen[v] = orjson.dumps(str(v)).decode()
            col.append(text)
    return _nulls(col, f)


def _nulls(col: list[str], f: Field) -> list[str]:
    """``col`` with ``null`` where ``f``'s mask is set."""
    if f.null is None:
        return col
    null = f.null.tolist() if isinstance(f.null, np.ndarray) else list(f.null)
    return ["null" if z else v for v, z in zip(col, null)]


def _decimal_texts(values: list[int], scale: int, plus: bool) -> list[str]:
    """``fmt`` (``fmt_signed`` with ``plus``) of each ``v × 10^-scale``, quoted, from the integers."""
    out = []
    for v in values:
        if scale <= 0:
            text = str(v * 10**-scale if scale < 0 else v)
        else:
            digits = str(-v if v < 0 else v).rjust(scale + 1, "0")
            frac = digits[-scale:].rstrip("0")
            text = ("-" if v < 0 else "") + digits[:-scale] + ("." + frac if frac else "")
        out.append('"+' + text + '"' if plus and v > 0 else '"' + text + '"')
    return out


AT_ONCE = 256  # from this many values a column's decimals are written with numpy (below, Python is quicker)
_TEN = np.uint64(10)


def decimal_texts_at_once(values: np.ndarray, scale: int, plus: bool) -> list[str]:
    """:func:`_decimal_texts` of an int64 column (``scale`` > 0), written with numpy a column of digits at a
    time: about half the time from a few hundred values up.

    Every value gets a row of characters: room for a quote and a sign, its digits at fixed places (the
    point in one column for all), a closing quote and a space.  Leading zeros, trailing zeros of the
    fraction and a bare point are left blank; the quotes and the sign go where each value's text begins and
    ends; the rows, one string, split at the blanks into one JSON text a value.
    """
    n = len(values)
    neg = values < 0
    q = np.where(neg, -values, values).view(np.uint64)  # -(-2**63) wraps to itself: 2**63 as uint64
    width = max(len(str(int(q.max()))), scale + 1)  # at least one digit before the point
    whole = width - scale
    m = np.empty((n, width + 5), dtype=np.uint8)
    m[:, :2] = 0x20
    m[:, -2:] = 0x20
    r = np.empty_like(q)
    ch = np.empty(n, dtype=np.uint8)
    seen = np.zeros(n, dtype=bool)  # a nonzero digit of the fraction at or after this one
    last = np.full(n, -1, dtype=np.int64)  # the last one of them
    for j in range(scale - 1, -1, -1):
        np.divmod(q, _TEN, out=(q, r))
        nonzero = r != 0
        last[nonzero & ~seen] = j
        seen |= nonzero
        np.add(r, 0x30, out=ch, casting="unsafe")
        ch[~seen] = 0x20
        m[:, 3 + whole + j] = ch
    m[:, 2 + whole] = np.where(seen, 0x2E, 0x20)
    first = np.zeros(n, dtype=np.int64)  # blanks before the first digit shown
    for j in range(whole - 1, -1, -1):
        blank = q == 0
        np.divmod(q, _TEN, out=(q, r))
        np.add(r, 0x30, out=ch, casting="unsafe")
        if j < whole - 1:  # the units are always shown
            ch[blank] = 0x20
            first += blank
        m[:, 2 + j] = ch
    rows = np.arange(n)
    m[rows, np.where(last >= 0, 4 + whole + last, 2 + whole)] = 0x22
    start = 2 + first
    if plus:
        above = values > 0
        m[rows[above], start[above] - 1] = 0x2B
        start = start - above
    if neg.any():
        m[rows[neg], start[neg] - 1] = 0x2D
        start = start - neg
    m[rows, start - 1] = 0x22
    return m.tobytes().decode("ascii").split()


@lru_cache(maxsize=64)
def _plan(names: tuple[str, ...]) -> tuple[bytes, ...]:
    """The literal runs between the values of records of fields ``names`` (made once per shape: an indicator
    writes a few records a batch, thousands of batches a day)."""
    literals = []
    head = b"{"
    for k, name in enumerate(names):
        literals.append(head + (b"," if k else b"") + orjson.dumps(name) + b":")
        head = b""
    literals.append(b"}\n")
    return tuple(literals)


def _compiled(fields: Sequence[Field], n: int) -> bytes | None:
    literals = _plan(tuple(f.name for f in fields))
    specs = []
    for f in fields:
        null = None if f.null is None else np.ascontiguousarray(f.null, dtype=np.uint8)
        if f.kind in ("text", "raw"):
            col = f.column if isinstance(f.column, list) else list(f.column)
            extra = None
        else:
            col = np.ascontiguousarray(f.column, dtype=np.uint8 if f.kind in ("choice", "bool") else None)
            if f.kind not in ("choice", "bool") and col.dtype != np.int64:
                return None  # Python ints past int64, or another dtype: the pure path
            extra = f.scale if f.kind == "decimal" else _choices(f.choices) if f.kind == "choice" else None
        specs.append((_CODES[f.kind], col, extra, null, int(_quoted(f)), int(f.plus)))
    try:
        return _KERNEL.json_lines(literals, tuple(specs), n)
    except ValueError:
        return None


@lru_cache(maxsize=64)
def _choices(choices: tuple[str, str]) -> tuple[bytes, bytes]:
    return tuple(orjson.dumps(c)[1:-1] for c in choices)  # type: ignore[return-value]
