"""The derivatives summed up in columns (streams/derivs_columns.py, streams/derivs_batch.py, decimal_columns.py)
give what taking the items one by one gives: the same files, the same counters."""

from __future__ import annotations

import functools
import json
import random
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate_derivs import _liq, okx_day
from indicator_core.decimal_columns import Decimals, join_text, split_text
from indicator_core.numbers import EXACT
from indicator_core.sources import derivs_lines
from indicator_core.streams import derivs_columns, derivs_stream
from tests.vaults import run, write_config

INST = "BTC-USDT-SWAP"


def _lines(hours: float, seed: int) -> list[bytes]:
    """A few hours of an OKX day as recorded, with what a real recording holds beside the clean pushes:
    other instruments' liquidations (the feed is per instrument type), repeated pushes, a push of no layout
    the kernel reads, a line that is no JSON."""
    rnd = random.Random(seed)
    stop = 1795392000000 + int(hours * 3_600_000)
    out: list[bytes] = []
    for line in okx_day(INST, "2026-11-23", 0, oi_every=1, liquidations=4000, seed=seed):
        ts = int(json.loads(line)["data"][0].get("ts") or json.loads(line)["data"][0]["details"][0]["ts"])
        if ts >= stop:
            break
        out.append(line)
        r = rnd.random()
        if r < 0.01:
            out.append(line)  # repeated after a reconnect
        elif r < 0.02:
            out.append(_liq("ETH-USDT-SWAP", [{"bkLoss": "0", "bkPx": "2600.5", "ccy": "", "posSide": "long",
                                               "side": "sell", "sz": "3", "ts": str(ts)}]))
        elif r < 0.0205:
            out.append(b'{"arg":{"channel":"open-interest","instId":"%s"},"data":[{"instId":"%s","oi":"12",'
                       b'"ts":"%d"}]}' % (INST.encode(), INST.encode(), ts))  # another key order
        elif r < 0.021:
            out.append(b"{not json")
    return out


def _outputs(vault: Path) -> dict[str, bytes]:
    derived = vault / "derived"
    got = {str(p.relative_to(derived)): p.read_bytes() for p in sorted(derived.rglob("*.jsonl"))}
    for p in sorted((vault / "state").rglob("*.derivs.state.json")):
        got[str(p.relative_to(vault))] = json.dumps(json.loads(p.read_text())["stream"]["counters"]).encode()
    return got


def _run(tmp: Path, lines: list[bytes], batch: int, name: str) -> dict[str, bytes]:
    vault = tmp / name
    folder = vault / "raw" / "derivs" / "okx" / "perps" / INST
    folder.mkdir(parents=True)
    (folder / "derivs_2026-11-23.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert run(vault, write_config(tmp / f"{name}.toml", f"[run]\nbatch_bytes = {batch}\n")) == 0
    return _outputs(vault)


@pytest.mark.parametrize("batch", [5000, 60_000, 1 << 22])
def test_columns_give_the_files_of_one_by_one(tmp_path: Path, batch: int, monkeypatch) -> None:
    if derivs_lines._KERNEL is None:
        pytest.skip("the compiled kernel is not built here")
    lines = _lines(3, seed=batch % 7)
    summed = []
    real = derivs_stream.sum_up

    def counted(stream, cols, other):
        got = real(stream, cols, other)
        summed.append(got is not None)
        return got

    monkeypatch.setattr(derivs_stream, "sum_up", counted)
    fast = _run(tmp_path, lines, batch, "columns")
    assert sum(summed) >= max(1, len(summed) // 2)  # most chunks were summed up in columns
    monkeypatch.setattr(derivs_stream, "sum_up", lambda stream, cols, other: None)
    one_by_one = _run(tmp_path, lines, batch, "items")
    monkeypatch.setattr(derivs_lines, "_KERNEL", None)
    pure = _run(tmp_path, lines, batch, "pure")
    assert fast.keys() == one_by_one.keys() == pure.keys()
    for name in fast:
        assert fast[name] == one_by_one[name] == pure[name], name
    liqs = [json.loads(x) for x in fast["liquidations/okx/perps/BTC-USDT-SWAP/liquidations.jsonl"].splitlines()]
    minutes = fast["derivs/okx/perps/BTC-USDT-SWAP/derivs_1m.jsonl"].count(b"\n")
    assert len(liqs) > 20 and minutes > 170


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), batch=st.sampled_from([700, 3000, 20_000, 1 << 20]),
       late_seconds=st.sampled_from([0, 10, 45]), minutes=st.integers(3, 25))
def test_dirty_streams_give_the_same_files_on_every_path(tmp_path_factory, monkeypatch, seed: int, batch: int,
                                                         late_seconds: int, minutes: int) -> None:
    """okx_window's dirty pushes (late ones, repeats, another instrument's liquidations, bad lines, a funding
    interval change) at random chunk sizes and lateness: summed up in columns where a chunk allows it, item by
    item, and the pure path write the same bytes and count the same."""
    if derivs_lines._KERNEL is None:
        pytest.skip("the compiled kernel is not built here")
    from bench.generate_derivs import okx_window

    tmp = tmp_path_factory.mktemp("dirty")
    start = 1723075200000 + (seed % 1400) * 60_000  # within 2024-08-08
    lines = [line for _, line in okx_window("ETH-USDT-SWAP", start, minutes * 60, seed=seed)]

    def files(name: str) -> dict[str, bytes]:
        vault = tmp / name
        folder = vault / "raw" / "derivs" / "okx" / "perps" / "ETH-USDT-SWAP"
        folder.mkdir(parents=True)
        (folder / "derivs_2024-08-08.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        config = f"[run]\nbatch_bytes = {batch}\n[derivs]\nlate_seconds = {late_seconds}\n"
        assert run(vault, write_config(tmp / f"{name}.toml", config)) == 0
        return _outputs(vault)

    with monkeypatch.context() as m:
        fast = files("columns")
        m.setattr(derivs_stream, "sum_up", lambda stream, cols, other: None)
        one_by_one = files("items")
        m.setattr(derivs_lines, "_KERNEL", None)
        pure = files("pure")
    assert fast == one_by_one == pure


def test_liquidations_in_a_minute_ordered_by_value(tmp_path: Path) -> None:
    """Two liquidations of one millisecond and side: by price as a number (99.5 before 100), not as text."""
    t = 1795392000000
    lines = [_liq(INST, [{"bkLoss": "0", "bkPx": px, "ccy": "", "posSide": "long", "side": "sell", "sz": sz,
                          "ts": str(t)}]) for px, sz in (("100", "300000"), ("99.5", "200000"))]
    lines.append(b'{"arg":{"channel":"open-interest","instId":"%s"},"data":[{"instId":"%s","instType":"SWAP",'
                 b'"oi":"5","oiCcy":"0.05","ts":"%d"}]}' % (INST.encode(), INST.encode(), t + 120_000))
    got = _run(tmp_path, lines, 1 << 20, "v")
    liqs = [json.loads(x) for x in got["liquidations/okx/perps/BTC-USDT-SWAP/liquidations.jsonl"].splitlines()]
    assert [x["px"] for x in liqs] == ["99.5", "100"]
    first = json.loads(got["derivs/okx/perps/BTC-USDT-SWAP/derivs_1m.jsonl"].splitlines()[0])
    assert first["largest_liq"] == {"side": "long", "px": "100", "quote": "300000"}  # 100 × 300000 × 0.01
    assert first["liq_long_count"] == 2 and first["liq_long_quote"] == "499000"


def test_repeats_found_past_a_hash_collision(monkeypatch) -> None:
    """first_of_each hashes rows to find repeats; rows of one hash that differ are compared field by field."""
    rnd = np.random.default_rng(3)
    key = rnd.integers(0, 4, size=(400, 3)).astype(np.int64)
    expected = sorted({tuple(r): i for i, r in reversed(list(enumerate(key.tolist())))}.values())
    assert derivs_columns.first_of_each(key).tolist() == expected
    monkeypatch.setattr(derivs_columns, "_MIX", np.uint64(0))  # every row's hash is its last field: collisions
    assert derivs_columns.first_of_each(key).tolist() == expected


# --- exact decimals in columns ----------------------------------------------------------------------------------

texts = st.builds(lambda whole, frac, neg: ("-" if neg and (whole or frac.strip("0")) else "") + str(whole)
                  + ("." + frac if frac else ""),
                  st.integers(0, 10**12), st.text("0123456789", max_size=8), st.booleans())


@settings(max_examples=200, deadline=None)
@given(a=st.lists(texts, min_size=1, max_size=12), b=st.lists(texts, min_size=1, max_size=12),
       big=st.booleans())
def test_decimal_columns_are_exact(a: list[str], b: list[str], big: bool) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if big:  # values past int64 once scaled: the object path
        a = [str(int(t) * 10**11) if "." not in t else t for t in a]
    da, db = Decimals.of_texts(a), Decimals.of_texts(b)
    A, B = [Decimal(t) for t in a], [Decimal(t) for t in b]
    for t in a:
        assert join_text(*split_text(t)) == t
    assert [da.at(i) for i in range(n)] == A
    assert [da.times(db).at(i) for i in range(n)] == [EXACT.multiply(x, y) for x, y in zip(A, B)]
    assert [da.times(Decimal("0.01")).at(i) for i in range(n)] == [EXACT.multiply(x, Decimal("0.01")) for x in A]
    assert [da.minus(db).at(i) for i in range(n)] == [EXACT.subtract(x, y) for x, y in zip(A, B)]
    assert [da.plus(db).at(i) for i in range(n)] == [EXACT.add(x, y) for x, y in zip(A, B)]
    starts = np.array(sorted({0, n, *[k for k in range(0, n, 3)]}), dtype=np.int64)
    mask = np.array([x >= 0 for x in B])
    sums = da.group_sums(starts, mask)
    assert [sums.at(i) for i in range(len(starts) - 1)] == [
        functools.reduce(EXACT.add, (x for x, keep in zip(A[s:e], mask[s:e]) if keep), Decimal(0))
        for s, e in zip(starts[:-1], starts[1:])]
    assert da.at_least(Decimal("1.5")).tolist() == [x >= Decimal("1.5") for x in A]
    nonzero = [i for i in range(n) if B[i] != 0]
    q = da.take(nonzero).divided(db.take(nonzero), 12)
    assert [q.at(k) for k in range(len(nonzero))] == [_divided(A[i], B[i], 12) for i in nonzero]
    both = Decimals.concat([da, db])
    assert [both.at(i) for i in range(2 * n)] == A + B
    order = np.argsort(da.sort_key(), kind="stable")
    assert [A[i] for i in order] == sorted(A)


def _divided(a: Decimal, b: Decimal, places: int) -> Decimal:
    """a / b rounded half-even to ``places``, from fractions (exact whatever the size)."""
    x = Fraction(a) / Fraction(b) * 10**places
    q, r = divmod(x.numerator, x.denominator)
    if 2 * r > x.denominator or (2 * r == x.denominator and q % 2):
        q += 1
    return Decimal(q).scaleb(-places, EXACT)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(-10**14, 10**14), st.integers(-10**14, 10**14).filter(bool)),
                      min_size=1, max_size=20),
       sa=st.integers(0, 6), sb=st.integers(0, 6), places=st.integers(0, 10), ties=st.booleans())
def test_division_by_int64_long_division_is_exact(pairs, sa: int, sb: int, places: int, ties: bool) -> None:
    """The int64 long division (a few digits a step) against fractions, ties included; where it declines (a
    quotient or a step that might not fit) the Python ints divide, and the result is the same."""
    from indicator_core.decimal_columns import _divided_int64

    if ties:  # halves at the last place: 2·a / (2·b) with an odd quotient digit
        pairs = [(2 * a + 1, 2) for a, _ in pairs]
    num = Decimals(np.array([a for a, _ in pairs], dtype=np.int64), sa)
    den = Decimals(np.array([b for _, b in pairs], dtype=np.int64), sb)
    expected = [_divided(num.at(i), den.at(i), places) for i in range(len(pairs))]
    got = num.divided(den, places)
    assert [got.at(i) for i in range(len(pairs))] == expected
    fast = _divided_int64(num.m, den.m, sb + places - sa)
    if fast is not None:
        assert [Decimal(int(v)).scaleb(-places, EXACT) for v in fast.tolist()] == expected


def test_division_ties_round_to_even() -> None:
    num = Decimals.of_texts(["1", "3", "5", "-1", "-3", "2"])
    den = Decimals.of_texts(["8", "8", "8", "8", "8", "3"])
    got = num.divided(den, 2)  # 0.125, 0.375, 0.625, -0.125, -0.375, 0.666…
    assert [str(got.at(i)) for i in range(6)] == ["0.12", "0.38", "0.62", "-0.12", "-0.38", "0.67"]
    assert got.m.tolist()[:1] == [12]
    from indicator_core.decimal_columns import _divided_int64

    assert _divided_int64(num.m, den.m, 2).tolist() == [12, 38, 62, -12, -38, 67]  # the int64 path took these


def test_readme_derivs_indicator_one_minute_at_a_time(tmp_path: Path) -> None:
    """The README's derivatives indicator (``on_derivs`` only) gets each minute of a run through the default
    ``on_derivs_minutes``, with the liquidations' contract terms applied, in minute order."""
    from indicator_core.instruments import _builtin
    from indicator_core.sources.files import Chunk, Cursor, TradeFile

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("# big_liq/__init__.py")
    namespace: dict = {}
    exec(text[start:text.index("```", start)], namespace)
    inst = _builtin(INST)
    indicator = namespace["BigLiquidationMinutes"](inst, namespace["Indicator"].Params())
    lines = _lines(1, seed=3)
    buf = b"\n".join(lines) + b"\n"
    chunk = Chunk(TradeFile("derivs_2026-11-23.jsonl", Path("x"), "2026-11-23", None), buf, 1, Cursor())
    runs = []

    class Sink:
        def quality(self, event) -> None:
            pass

        def deliver(self, route, run, minute=None) -> None:
            runs.append(run)

    stream = derivs_stream.DerivsStream(10, inst)
    stream.process(derivs_lines.okx_chunk(chunk, INST), "x", Sink())
    got: list[dict] = []
    for run in runs:
        indicator.on_derivs_minutes(run, lambda name, record: got.append(record))
    expected = []
    for run in runs:
        for i in range(run.count):
            a, z = run.liq_starts[i], run.liq_starts[i + 1]
            total = sum((run.liquidations.quote.at(k) for k in range(a, z)), Decimal(0))
            if total >= 1_000_000:
                expected.append((run.event(i).timestamp_utc, total))
    assert got and [(g["timestamp_utc"], Decimal(g["quote"])) for g in got] == expected
