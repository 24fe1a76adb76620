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
