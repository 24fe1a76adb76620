"""Records written from columns give the bytes orjson gives for the dicts, on both paths."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from indicator_core import jsonlines
from indicator_core.jsonlines import Field, json_lines, records
from tests.kernel_paths import on_both_paths

kernel_path = on_both_paths("json", jsonlines)


def reference(fields, n) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records(fields, n))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(
    st.integers(0, 253_402_300_799_999),  # 1970 to the year 9999
    st.integers(-(2**63) + 1, 2**63 - 1), st.integers(0, 18), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12), st.booleans(),
    st.one_of(st.none(), st.integers(-5, 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
              st.lists(st.text(max_size=3), max_size=2))), max_size=30))
def test_every_kind_as_orjson_writes_it(rows) -> None:
    n = len(rows)
    ts, mant, scale, flag, whole, text, null, raw = (list(c) for c in zip(*rows)) if rows else ([],) * 8
    null_mask = np.array(null, dtype=bool)
    fields = [Field("ts_utc", "iso_ms", np.array(ts, dtype=np.int64)),
              Field("trade_id", "int", np.array(whole, dtype=np.int64)),
              Field("count", "int", np.array(whole, dtype=np.int64), quoted=False),
              Field("maybe", "int", np.array(whole, dtype=np.int64), quoted=False, null=null_mask),
              Field("side", "choice", np.array(flag, dtype=bool), choices=("buy", "sell")),
              Field("tainted", "bool", np.array(flag, dtype=bool)),
              Field("note", "text", text),
              Field("nested", "raw", [orjson.dumps(v) for v in raw]),
              Field("maybe_note", "text", text, null=~null_mask)]
    for s in sorted(set(scale)) or [0]:
        fields.append(Field(f"px{s}", "decimal", np.array(mant, dtype=np.int64), scale=s))
        fields.append(Field(f"delta{s}", "decimal", np.array(mant, dtype=np.int64), scale=s, plus=True,
                            null=null_mask))
    got = json_lines(fields, n)
    assert got == reference(fields, n)
    plain = not any('"' in t or "\\" in t for t in text)
    if jsonlines._KERNEL is not None and n and plain:  # written by the kernel, not handed to the pure path
        assert jsonlines._compiled(fields, n) == got
    assert [orjson.loads(x) for x in got.splitlines()] == records(fields, n)


def test_signed_and_null_decimals() -> None:
    """``plus`` writes fmt_signed (``+`` before a positive value, none before 0), a null mask writes ``null``."""
    fields = [Field("d", "decimal", np.array([5, -5, 0, 120, -3], dtype=np.int64), scale=2, plus=True,
                    null=np.array([0, 0, 0, 0, 1], dtype=bool)),
              Field("t", "bool", np.array([1, 0, 1, 0, 1], dtype=bool))]
    got = json_lines(fields, 5)
    assert got == (b'{"d":"+0.05","t":true}\n{"d":"-0.05","t":false}\n{"d":"0","t":true}\n'
                   b'{"d":"+1.2","t":false}\n{"d":null,"t":true}\n')
    assert got == reference(fields, 5)


def test_edges_of_decimals_and_times() -> None:
    mant = np.array([0, 1, 10, 100, 60000_10, 5_000_000, 10**18, 2**63 - 1, 123_000], dtype=np.int64)
    for s in (0, 1, 2, 3, 8, 18):
        fields = [Field("v", "decimal", mant, scale=s)]
        assert json_lines(fields, len(mant)) == reference(fields, len(mant))
    ts = np.array([0, 1, 999, 1000, 86_399_999, 951_782_400_000, 1_732_320_000_064, -1], dtype=np.int64)
    fields = [Field("t", "iso_ms", ts)]
    assert json_lines(fields, len(ts)) == reference(fields, len(ts))


def test_text_that_needs_escaping_and_ints_past_int64_take_the_pure_path() -> None:
    fields = [Field("id", "text", ['a"b', "é", "tab\t"])]
    assert json_lines(fields, 3) == reference(fields, 3)
    big = np.array([2**70, 5], dtype=object)
    fields = [Field("q", "decimal", big, scale=2)]
    assert json_lines(fields, 2) == reference(fields, 2)


@settings(max_examples=200, deadline=None)
@given(mantissas=st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-10**6, 10**6),
                                    st.sampled_from([0, 1, -1, 10**18, -(2**63), 2**63 - 1])),
                          min_size=1, max_size=400),
       tens=st.integers(0, 12), scale=st.integers(1, 19), plus=st.booleans())
def test_decimals_written_at_once_are_fmt_of_each(mantissas: list[int], tens: int, scale: int, plus: bool) -> None:
    """Long columns of decimals are written with numpy a digit column at a time: each text is what ``fmt``
    (``fmt_signed``) gives for the decimal, trailing zeros, bare points, signs and int64's ends included."""
    from indicator_core.numbers import fmt, fmt_signed, to_dec

    values = [max(min(v * 10**tens, 2**63 - 1), -(2**63)) for v in mantissas]
    show = fmt_signed if plus else fmt
    want = ['"%s"' % show(to_dec(v, scale)) for v in values]
    assert jsonlines.decimal_texts_at_once(np.array(values, dtype=np.int64), scale, plus) == want


def test_a_long_column_goes_through_the_numpy_writer_with_the_same_lines(monkeypatch) -> None:
    """From :data:`jsonlines.AT_ONCE` values up the pure path writes decimals at once; the lines are the same
    as orjson's for the dicts, nulls included."""
    n = jsonlines.AT_ONCE + 37
    rng = np.random.default_rng(7)
    mant = rng.integers(-(10**12), 10**12, n) * 10 ** rng.integers(0, 5, n)
    null = rng.random(n) < 0.1
    fields = [Field("px", "decimal", mant, scale=4), Field("delta", "decimal", mant, scale=8, plus=True, null=null)]
    calls = []
    real = jsonlines.decimal_texts_at_once
    monkeypatch.setattr(jsonlines, "decimal_texts_at_once", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(jsonlines, "_KERNEL", None)
    assert json_lines(fields, n) == reference(fields, n)
    assert len(calls) == 2


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(-3, 3), max_size=40), width=st.sampled_from([0, 1, 2]))
def test_per_distinct_makes_each_rows_value(values: list[int], width: int) -> None:
    """A column made once per distinct key is the column made row by row: 1-d and 2-d arrays, tuples."""
    from indicator_core.jsonlines import per_distinct

    def make(*key: int) -> str:
        return ",".join(map(str, key))

    if width == 0:
        keys: object = np.array(values, dtype=np.int64)
        want = [make(v) for v in values]
    elif width == 1:
        keys = np.array([[v, -v] for v in values], dtype=np.int64).reshape(len(values), 2)
        want = [make(v, -v) for v in values]
    else:
        keys = [(v, v * v) for v in values]
        want = [make(v, v * v) for v in values]
    assert per_distinct(keys, make) == want
