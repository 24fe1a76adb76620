"""Reading ahead in threads keeps the order of the chunks and the place of an error."""

from __future__ import annotations

import threading
import time

import pytest

from indicator_core.prefetch import map_ahead, map_inline


def slow_square(x: int) -> int:
    time.sleep(0.001 * (x % 3))  # later items may finish first
    return x * x


@pytest.mark.parametrize("mapper", [map_ahead, map_inline])
def test_results_come_in_the_order_of_the_items(mapper) -> None:
    assert list(mapper(slow_square, iter(range(50)))) == [(x, x * x) for x in range(50)]


def test_an_error_of_a_worker_is_raised_at_its_item() -> None:
    def fn(x: int) -> int:
        if x == 7:
            raise ValueError("bad chunk 7")
        return x

    got = []
    with pytest.raises(ValueError, match="bad chunk 7"):
        for item, _ in map_ahead(fn, iter(range(20))):
            got.append(item)
    assert got == list(range(7))


def test_an_error_of_the_reader_is_raised_after_the_items_before_it() -> None:
    def items():
        yield from range(5)
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item, _ in map_ahead(lambda x: x, items()):
            got.append(item)
    assert got == list(range(5))


def test_stopping_early_closes_the_reader_and_leaves_no_thread() -> None:
    closed = threading.Event()

    def items():
        try:
            for k in range(10_000):
                yield k
        finally:
            closed.set()

    before = threading.active_count()
    for item, _ in map_ahead(lambda x: x, items()):
        if item == 3:
            break
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_the_switch_interval_is_short_during_a_pass_and_restored_after_overlapping_passes() -> None:
    import sys
    import threading

    import pytest

    from indicator_core import prefetch

    before = sys.getswitchinterval()
    short = pytest.approx(min(before, prefetch.SWITCH_INTERVAL))
    release = threading.Event()

    def slow(x: int) -> int:
        if x:
            release.wait(5)  # the first pass stays open while the second runs
        return x

    first = prefetch.map_ahead(lambda x: x, iter(range(3)))
    assert next(first)[1] == 0
    second = prefetch.map_ahead(slow, iter(range(2)))
    assert next(second)[1] == 0  # both passes open now
    assert sys.getswitchinterval() == short
    assert [x for _, x in first] == [1, 2]  # the first ends while the second still runs: still short
    assert sys.getswitchinterval() == short
    release.set()
    assert [x for _, x in second] == [1]
    assert sys.getswitchinterval() == pytest.approx(before)  # the last one out restores it


def test_the_consumer_works_on_a_later_item_while_the_one_it_needs_is_not_ready() -> None:
    """The helper is stuck on item 0 until some item was worked on in the consumer's thread: without the consumer
    drawing item 1 itself, this would never finish (the event's timeout fails it instead)."""
    consumer = threading.get_ident()
    by_consumer = threading.Event()
    where: dict[int, int] = {}

    def fn(x: int) -> int:
        where[x] = threading.get_ident()
        if threading.get_ident() == consumer:
            by_consumer.set()
        elif x == 0:
            assert by_consumer.wait(5), "the consumer waited idle for the helper"
        return x * 10

    assert list(map_ahead(fn, iter(range(6)))) == [(x, x * 10) for x in range(6)]
    assert where[0] != consumer and consumer in where.values()


@pytest.mark.parametrize("seed", range(20))
def test_each_item_once_in_order_whoever_works_on_it(seed: int) -> None:
    import random

    rng = random.Random(seed)
    delays = [rng.choice([0, 0, 0.0005, 0.002]) for _ in range(40)]
    fail_at = rng.choice([None, None, rng.randrange(40)])
    applied: list[int] = []
    lock = threading.Lock()

    def fn(x: int) -> int:
        time.sleep(delays[x])
        with lock:
            applied.append(x)
        if x == fail_at:
            raise ValueError(f"bad chunk {x}")
        return -x

    got = []
    try:
        for item, result in map_ahead(fn, iter(range(40)), depth=rng.choice([1, 2, 3])):
            assert result == -item
            got.append(item)
    except ValueError as exc:
        assert str(exc) == f"bad chunk {fail_at}"
    assert got == list(range(40 if fail_at is None else fail_at))
    assert len(applied) == len(set(applied))  # no item worked on twice
    assert set(got) <= set(applied)


def test_an_interrupt_in_either_thread_reaches_the_consumer_and_leaves_no_thread() -> None:
    """Ctrl-C raised while an item is worked on (by the helper or by the consumer itself) stops the pass at
    that item; the helper ends and the reader is closed."""
    for raise_in_consumer in (False, True):
        consumer = threading.get_ident()
        closed = threading.Event()

        def items():
            try:
                yield from range(50)
            finally:
                closed.set()

        def fn(x: int) -> int:
            in_consumer = threading.get_ident() == consumer
            time.sleep(0.005 if raise_in_consumer and not in_consumer else 0.001)  # a slow helper: the consumer helps
            if x >= 3 and in_consumer == raise_in_consumer:
                raise KeyboardInterrupt
            return x

        before = threading.active_count()
        got = []
        with pytest.raises(KeyboardInterrupt):
            for item, _ in map_ahead(fn, items()):
                got.append(item)
        assert got == list(range(len(got))) and len(got) >= 3
        assert closed.wait(5)
        assert threading.active_count() == before
