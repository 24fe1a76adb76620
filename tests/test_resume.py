"""SPEC section 8: any way of cutting the input into runs gives the outputs of one clean run."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.resume_cases import Case, check, config, materialize, reference
from tests.vaults import outputs, run

cuts = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=4).map(sorted)
batches = st.lists(st.sampled_from([300, 1024, 4096, 65536, 1 << 20]), min_size=1, max_size=3)


kills = st.lists(st.floats(min_value=0.05, max_value=1.0), max_size=1) if sys.platform != "win32" else st.just([])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=cuts, batches=batches, repeat=st.lists(st.booleans(), min_size=1, max_size=3),
       at_line_end=st.lists(st.booleans(), min_size=1, max_size=4), kills=kills)
def test_cut_and_killed_runs_equal_one_run(cuts: list[float], batches: list[int], repeat: list[bool],
                                          at_line_end: list[bool], kills: list[float]) -> None:
    """Input cut at random byte or line points into runs, some runs SIGKILLed: the bytes of one clean run."""
    with tempfile.TemporaryDirectory() as tmp:
        assert check(Path(tmp), Case(cuts, batches, repeat, kills=kills, at_line_end=at_line_end)) is None


def test_reference_covers_every_output() -> None:
    names = set(reference())
    for expected in ("volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl", "quality/okx/perps/ETH-USDT-SWAP/gaps.jsonl",
                     "quality/okx/perps/ETH-USDT-SWAP/late.jsonl", "quality/okx/perps/ETH-USDT-SWAP/rejects.jsonl",
                     "wicks/okx/perps/BTC-USDT-SWAP/wicks_5m.jsonl", "candles/okx/perps/BTC-USDT-SWAP/candles_1h.jsonl",
                     "buckets/okx/perps/ETH-USDT-SWAP/buckets_1m.jsonl", "quality/okx/perps/ETH-USDT-SWAP/books.jsonl",
                     "quality/okx/perps/ETH-USDT-SWAP/books_rejects.jsonl",
                     "whales/okx/perps/ETH-USDT-SWAP/whales.jsonl", "whales/okx/perps/BTC-USDT-SWAP/whales.jsonl",
                     "poor_levels/okx/perps/ETH-USDT-SWAP/poor_levels.jsonl",
                     "poor_levels/okx/perps/BTC-USDT-SWAP/poor_levels.jsonl",
                     "confluence/okx/perps/ETH-USDT-SWAP/signals.jsonl", "confluence/okx/perps/BTC-USDT-SWAP/signals.jsonl",
                     "derivs/okx/perps/ETH-USDT-SWAP/derivs_1m.jsonl",
                     "liquidations/okx/perps/ETH-USDT-SWAP/liquidations.jsonl",
                     "quality/okx/perps/ETH-USDT-SWAP/derivs.jsonl",
                     "quality/okx/perps/ETH-USDT-SWAP/derivs_rejects.jsonl",
                     "footprint/okx/perps/ETH-USDT-SWAP/footprint_1m.jsonl",
                     "footprint/okx/perps/BTC-USDT-SWAP/profile.jsonl",
                     "footprint/okx/perps/BTC-USDT-SWAP/naked_pocs.jsonl"):
        assert expected in names


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("seed", range(4))
def test_killed_runs_equal_one_run(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    kills = [rng.uniform(0.1, 0.9) for _ in range(rng.randint(1, 3))]
    # the first killed run starts from an empty vault, so its kill lands inside the pass
    case = Case(cuts=[], batches=[rng.choice([4096, 65536])], repeat=[False], kills=kills)
    assert check(tmp_path, case) is None
    assert case.killed >= 1  # the kill landed inside a run, not after it


@pytest.mark.soak
@pytest.mark.timeout(0)  # as long as SOAK_CASES takes
def test_soak() -> None:
    """`pytest -m soak -s tests/test_resume.py` runs SOAK_CASES (default 1000) random cases and prints how many held."""
    n = int(os.environ.get("SOAK_CASES", "1000"))
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    failures = []
    killed = 0
    for k in range(n):
        case = Case(
            cuts=sorted(rng.random() for _ in range(rng.randint(0, 4))),
            batches=[rng.choice([300, 1024, 4096, 65536, 1 << 20]) for _ in range(rng.randint(1, 3))],
            repeat=[rng.random() < 0.3 for _ in range(3)],
            at_line_end=[rng.random() < 0.3 for _ in range(4)],
            kills=[rng.uniform(0.05, 1.0) for _ in range(rng.randint(0, 2))] if sys.platform != "win32" else [],
        )
        with tempfile.TemporaryDirectory() as tmp:
            why = check(Path(tmp), case)
        killed += case.killed
        if why is not None:
            failures.append((k, case, why))
            print(f"case {k} FAILED: {case}: {why}", flush=True)
    print(f"soak: {n - len(failures)} of {n} cases held ({killed} runs killed mid-way)")
    assert not failures
