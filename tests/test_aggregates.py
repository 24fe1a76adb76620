"""Aggregates across venues (SPEC section 16): ``[aggregates.NAME] members = [...]`` -> ``aggregate/all/NAME``.

The oracle: the real ETHUSDT raw trades of Binance and their OKX rewrite are the same tape, so their
aggregate holds twice one of them in every summed field, and the prices, tier inputs and CVD follow.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

from indicator_core.cli import main
from tests.test_venues import binance_days, folder
from tests.vaults import ETH_PERP, outputs, run, write_config

MEMBERS = '[aggregates.ETH]\nmembers = ["okx/perps/ETH-USDT-SWAP", "binance/perps/ETHUSDT"]\n'
SUMMED = ("total_volume", "buy_volume", "sell_volume", "delta", "whale_volume", "whale_buy_volume",
          "whale_sell_volume")


def records(vault: Path, path: str) -> list[dict]:
    return [json.loads(x) for x in (vault / "derived" / path).read_text().splitlines()]


def eth_vault(root: Path, binance_from: int = 0) -> Path:
    days = binance_days()
    for day, data in days.items():
        lines = data.splitlines(keepends=True)
        if day == "2024-08-08":
            lines = lines[binance_from:]
        (folder(root, "binance", "ETHUSDT") / f"trades_{day}.jsonl").write_bytes(b"".join(lines))
    for f in ETH_PERP.iterdir():
        shutil.copy(f, folder(root, "okx", "ETH-USDT-SWAP") / f.name)
    return root


def test_the_aggregate_of_one_tape_on_two_venues_is_twice_the_tape(tmp_path: Path, capsys) -> None:
    vault = eth_vault(tmp_path / "v")
    cfg = write_config(tmp_path / "c.toml", MEMBERS)
    assert run(vault, cfg) == 0
    one = records(vault, "volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl")
    agg = records(vault, "volume/aggregate/all/ETH/volume_1m.jsonl")
    assert len(agg) == len(one) == 6
    for a, o in zip(agg, one):
        for f in SUMMED:
            assert Decimal(a[f]) == 2 * Decimal(o[f]), f
        assert a["trade_count"] == 2 * o["trade_count"] and a["whale_count"] == 2 * o["whale_count"]
        assert [a[k] for k in ("timestamp_utc", "open", "high", "low", "close", "price_change_pct", "divergence")] == \
               [o[k] for k in ("timestamp_utc", "open", "high", "low", "close", "price_change_pct", "divergence")]
        assert a["members"] == ["okx/perps/ETH-USDT-SWAP", "binance/perps/ETHUSDT"] and not a["tainted"]
        assert a["by_member"]["binance/perps/ETHUSDT"] == {"buy_volume": o["buy_volume"], "sell_volume": o["sell_volume"]}
        assert a["inst_id"] == "aggregate/ETH"
    cvd = records(vault, "cvd/aggregate/all/ETH/cvd_1m.jsonl")
    okx_cvd = records(vault, "cvd/okx/perps/ETH-USDT-SWAP/cvd_1m.jsonl")
    assert [Decimal(c["cvd"]) for c in cvd] == [2 * Decimal(c["cvd"]) for c in okx_cvd]
    assert [Decimal(c["cvd_session"]) for c in cvd] == [2 * Decimal(c["cvd_session"]) for c in okx_cvd]
    capsys.readouterr()
    assert main(["study", "--vault", str(vault), "--inst", "aggregate/ETH", "--horizons", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["inst_id"] for r in rows} == {"ETH"}  # the aggregate alone, its name as its id


def test_a_member_without_a_minute_taints_it_member_missing(tmp_path: Path) -> None:
    vault = eth_vault(tmp_path / "v", binance_from=4000)  # Binance's file starts minutes later
    assert run(vault, write_config(tmp_path / "c.toml", MEMBERS)) == 0
    agg = records(vault, "volume/aggregate/all/ETH/volume_1m.jsonl")
    first_bn = records(vault, "volume/binance/perps/ETHUSDT/volume_1m.jsonl")[0]["timestamp_utc"]
    before = [a for a in agg if a["timestamp_utc"] < first_bn]
    assert before and all(a["taint"] == ["member_missing"] and a["members"] == ["okx/perps/ETH-USDT-SWAP"]
                          for a in before)
    assert all(not a["tainted"] for a in agg if a["timestamp_utc"] >= first_bn)


def test_an_aggregate_cut_into_runs_equals_one_run_and_a_wrong_member_is_named(tmp_path: Path, capsys) -> None:
    cfg = write_config(tmp_path / "c.toml", MEMBERS + "[run]\nbatch_bytes = 65536\n")
    whole = eth_vault(tmp_path / "whole")
    assert run(whole, cfg) == 0
    cut = tmp_path / "cut"
    streams = {"binance/perps/ETHUSDT": sorted((f"trades_{d}.jsonl", data) for d, data in binance_days().items()),
               "okx/perps/ETH-USDT-SWAP": sorted((f.name, f.read_bytes()) for f in ETH_PERP.iterdir())}
    for k in (1, 3, 5, 8):  # each venue's stream grows at its own pace, run after run (append-only, in order)
        for label, files in streams.items():
            total = sum(len(d) for _, d in files)
            left = total * min(k, 5 if label.startswith("binance") else 4) // (5 if label.startswith("binance") else 4)
            d = cut / "raw" / "trades" / label
            d.mkdir(parents=True, exist_ok=True)
            for name, data in files:
                if left <= 0:
                    break
                (d / name).write_bytes(data[:left])
                left -= len(data)
        assert run(cut, cfg) == 0
    assert outputs(cut) == outputs(whole)
    bad = write_config(tmp_path / "bad.toml", '[aggregates.ETH]\nmembers = ["okx/perps/ETH-USDT-SWAP", "binance/perps/ETHUSDC"]\n')
    capsys.readouterr()
    assert run(whole, bad) == 1
    assert "'binance/perps/ETHUSDC' is not an instrument of the vault" in capsys.readouterr().err


def test_members_base_volumes_are_summed_when_the_volume_analyzer_writes_them(tmp_path: Path) -> None:
    vault = eth_vault(tmp_path / "v")
    assert run(vault, write_config(tmp_path / "c.toml", MEMBERS + "[plugins.volume]\nbase_volumes = true\n")) == 0
    one = records(vault, "volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl")
    agg = records(vault, "volume/aggregate/all/ETH/volume_1m.jsonl")
    assert one[0]["buy_base"] and list(one[0])[:11][-3:] == ["sell_volume", "buy_base", "sell_base"]
    for a, o in zip(agg, one):
        assert Decimal(a["buy_base"]) == 2 * Decimal(o["buy_base"]) and Decimal(a["sell_base"]) == 2 * Decimal(o["sell_base"])
    # without them (the default), the aggregate says it cannot sum them
    plain = eth_vault(tmp_path / "plain")
    assert run(plain, write_config(tmp_path / "p.toml", MEMBERS)) == 0
    assert all(a["buy_base"] is None for a in records(plain, "volume/aggregate/all/ETH/volume_1m.jsonl"))


def test_a_state_written_before_base_volumes_existed_goes_on_and_a_change_of_it_is_refused(tmp_path: Path,
                                                                                        capsys) -> None:
    """A setting an indicator gained later is the same definition while it keeps its default."""
    from indicator_core.instruments import InstrumentTable
    from indicator_core.runtime.consumer import fingerprint

    days = sorted(ETH_PERP.iterdir())
    whole = tmp_path / "whole"
    for f in days:
        shutil.copy(f, folder(whole, "okx", "ETH-USDT-SWAP") / f.name)
    assert run(whole) == 0
    old = tmp_path / "old"
    shutil.copy(days[0], folder(old, "okx", "ETH-USDT-SWAP") / days[0].name)
    assert run(old) == 0
    state_file = old / "state/volume/okx/perps/ETH-USDT-SWAP.state.json"
    state = json.loads(state_file.read_text())
    del state["params"]["base_volumes"]  # as the version before the setting wrote it
    inst = InstrumentTable().get("ETH-USDT-SWAP")
    state["fingerprint"] = fingerprint(state["params"], inst, True)
    state_file.write_text(json.dumps(state))
    shutil.copy(days[1], folder(old, "okx", "ETH-USDT-SWAP") / days[1].name)
    assert run(old) == 0
    assert outputs(old) == outputs(whole)
    state_file.write_text(json.dumps(state))  # the old state again, now with the setting changed
    capsys.readouterr()
    assert run(old, write_config(tmp_path / "on.toml", "[plugins.volume]\nbase_volumes = true\n")) == 1
    assert "its settings changed since it wrote its output" in capsys.readouterr().err
