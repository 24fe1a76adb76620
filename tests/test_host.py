"""The host at the boundaries a user touches: one pass, config, plugins, the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import indicator_core.sources as sources
from indicator_core.cli import main
from tests.vaults import ETH_2023, ETH_PERP, OKX, REPO, inst_dir, outputs, run, write_config

DAY1 = ETH_PERP / "trades_2024-08-08.jsonl"
DAY2 = ETH_PERP / "trades_2024-08-09.jsonl"


def eth_vault(root: Path, *days: Path) -> Path:
    vault = root / "vault"
    folder = inst_dir(vault, "ETH-USDT-SWAP")
    for d in days:
        shutil.copy(d, folder / d.name)
    return vault


def test_one_pass_parses_each_line_once(tmp_path: Path, monkeypatch) -> None:
    vault = eth_vault(tmp_path, DAY1, DAY2)
    seen: list[int] = []
    real = sources.parse

    def counting(chunk, inst_id, *args):
        seen.append(bytes(chunk.buf).count(b"\n"))  # a closed day comes as a view of a mapped window
        return real(chunk, inst_id, *args)

    monkeypatch.setattr(sources, "parse", counting)
    cfg = write_config(tmp_path / "c.toml", "[run]\nbatch_bytes = 100000\n")
    assert run(vault, cfg) == 0
    lines = sum(len(p.read_bytes().splitlines()) for p in (DAY1, DAY2))
    assert sum(seen) == lines  # every indicator, every line parsed exactly once
    assert len(seen) > 10  # in many batches
    assert {p.split("/")[0] for p in outputs(vault)} >= {"volume", "cvd", "vwap", "candles", "wicks", "whales"}


def test_day_by_day_equals_one_run(tmp_path: Path) -> None:
    both = eth_vault(tmp_path / "a", DAY1, DAY2)
    assert run(both) == 0
    step = eth_vault(tmp_path / "b", DAY1)
    assert run(step) == 0
    shutil.copy(DAY2, inst_dir(step, "ETH-USDT-SWAP") / DAY2.name)
    assert run(step) == 0
    assert outputs(step) == outputs(both)
    assert len(outputs(both)) >= 5


def test_disable_volume_then_enable_it_again(tmp_path: Path) -> None:
    never = eth_vault(tmp_path / "never", DAY1, DAY2)
    assert run(never) == 0
    vault = eth_vault(tmp_path / "paused", DAY1)
    on = write_config(tmp_path / "on.toml", "[plugins.volume]\nenabled = true\n")
    off = write_config(tmp_path / "off.toml", "[plugins.volume]\nenabled = false\n")
    assert run(vault, on) == 0
    # stop volume mid-way: it keeps its state, the others go on
    before = (vault / "derived/volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl").read_bytes()
    shutil.copy(DAY2, inst_dir(vault, "ETH-USDT-SWAP") / DAY2.name)
    assert run(vault, off) == 0
    assert (vault / "derived/volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl").read_bytes() == before
    got = outputs(vault)
    for name in got:
        if not name.startswith("volume/"):
            assert got[name] == outputs(never)[name], name
    assert run(vault, on) == 0  # volume catches up from its own cursor
    assert outputs(vault) == outputs(never)


def test_an_indicator_enabled_after_a_day_that_ends_without_a_line_end(tmp_path: Path) -> None:
    """A day whose last line has no line end is complete once the next day's file exists (here, created empty at
    midnight): the others commit right after that line, at the day's end.  An indicator enabled in the next run
    catches up to them there (it was refused: "a position beyond the end of the trades on disk")."""
    body = DAY1.read_bytes().rstrip(b"\n")

    def vault_of(name: str) -> Path:
        vault = tmp_path / name
        folder = inst_dir(vault, "ETH-USDT-SWAP")
        (folder / DAY1.name).write_bytes(body)
        (folder / DAY2.name).write_bytes(b"")
        return vault

    off = write_config(tmp_path / "off.toml", "[plugins.volume]\nenabled = false\n")
    vault = vault_of("later")
    assert run(vault, off) == 0
    cursor = json.loads((vault / "state/cvd/okx/perps/ETH-USDT-SWAP.state.json").read_text())["cursor"]
    assert (cursor["file"], cursor["offset"]) == (DAY1.name, len(body))  # at the end of the unterminated line
    assert run(vault) == 0  # volume enabled: it reads from the start up to the others' cursor, then on together
    fresh = vault_of("fresh")
    assert run(fresh) == 0
    assert outputs(vault) == outputs(fresh)


def test_disabled_volume_writes_nothing(tmp_path: Path) -> None:
    vault = eth_vault(tmp_path, DAY1, DAY2)
    off = write_config(tmp_path / "off.toml", "[plugins.volume]\nenabled = false\n")
    assert run(vault, off) == 0
    assert not (vault / "derived" / "volume").exists()
    assert not (vault / "state" / "volume").exists()
    assert {p.split("/")[0] for p in outputs(vault)} == {"cvd", "vwap", "candles", "wicks", "whales"}


def test_a_disabled_indicator_with_nothing_to_check_is_not_validated_but_a_typo_in_it_is_refused(tmp_path: Path) -> None:
    """A disabled indicator's table that holds only ``enabled`` has nothing to check: its defaults are taken
    without building its validator (a run's start does not pay for it).  A disabled table with a setting is
    still validated: a typo there is an error, as in an enabled one."""
    from indicator_core.config import load_config, plugin_settings
    from indicator_core.errors import ConfigError
    from indicator_core.plugins import collect_indicators, make_plugin_manager

    off = write_config(tmp_path / "off.toml", "[plugins.whales]\nenabled = false\n")
    probe = textwrap.dedent(f"""
        from pathlib import Path
        from indicator_core.config import load_config, plugin_settings
        from indicator_core.plugins import collect_indicators, make_plugin_manager
        indicators = collect_indicators(make_plugin_manager())
        settings = plugin_settings(load_config(Path({str(off)!r})), {{n: i.cls for n, i in indicators.items()}})
        whales = type(settings["whales"].params)
        print("PROBE", settings["whales"].enabled, whales.__pydantic_complete__,
              type(settings["volume"].params).__pydantic_complete__, settings["whales"].params == whales())
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["PROBE", "False", "False", "True", "True"]
    typo = write_config(tmp_path / "typo.toml", "[plugins.whales]\nenabled = false\nthreshold_usdd = 5\n")
    with pytest.raises(ConfigError, match="threshold_usdd"):
        plugin_settings(load_config(typo), {n: i.cls for n, i in collect_indicators(make_plugin_manager()).items()})


def test_plugins_lists_builtins_and_enabled(tmp_path: Path, capsys) -> None:
    cfg = write_config(tmp_path / "c.toml", "[plugins.wicks]\nenabled = false\n")
    assert main(["plugins", "--json", "--config", str(cfg)]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) >= {"volume", "cvd", "vwap", "candles", "wicks", "whales", "poor_levels"}
    assert rows["wicks"]["enabled"] is False and rows["volume"]["enabled"] is True
    assert rows["volume"]["source"] == "built-in" and rows["volume"]["hooks"] == ["register_indicators"]
    assert main(["plugins"]) == 0
    assert "volume" in capsys.readouterr().out


def test_plugins_table_columns_fit_the_longest_name(capsys) -> None:
    """Each column of the listing is as wide as its widest cell: `aggregate_volume` does not push its row's
    module out of line."""
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert any(line.startswith("aggregate_volume ") for line in table)
    at = table[0].index("module")
    assert all(line.index("indicator_core_plugins.") == at for line in table[1:])


def test_status_shows_a_dash_where_no_bar_has_closed_yet(tmp_path: Path, capsys) -> None:
    """An instrument whose only minute is still open has no last bar: `status` shows "-", not "None", in line."""
    vault = tmp_path / "vault"
    lines = (ETH_2023 / "trades_2023-02-02.jsonl").read_bytes().splitlines(keepends=True)[:3]  # one minute's
    (inst_dir(vault, "ETH-USDT-SWAP") / "trades_2023-02-02.jsonl").write_bytes(b"".join(lines))
    assert run(vault) == 0
    capsys.readouterr()
    assert main(["status", "--vault", str(vault)]) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert "None" not in "\n".join(table)
    at = table[0].index("last bar")
    assert all(line[at] == "-" for line in table[1:])


@pytest.mark.skipif(sys.platform == "win32", reason="a closed pipe is EINVAL there, not EPIPE")
def test_a_closed_output_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`indicators plugins | head -1`: when the reader has gone, the command stops without an error message,
    with the status of a process stopped by SIGPIPE (as a shell tool's)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run([sys.executable, "-m", "indicator_core", "plugins"], stdout=write_end,
                              stderr=subprocess.PIPE, env=env, text=True, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""


TINY = '''
from indicator_core import Indicator, hookimpl


class Tiny(Indicator):
    """Counts the trades of each minute."""

    name = "tiny"
    version = "0.3"

    def __init__(self, instrument, params):
        super().__init__(instrument, params)
        self.n = 0

    def outputs(self):
        return ["tiny_1m"]

    def on_trades(self, trades, emit):
        self.n += len(trades)

    def on_bar(self, bar, emit):
        emit("tiny_1m", {"timestamp_utc": bar.timestamp_utc, "seen": self.n, "count": bar.trade_count})
        self.n = 0

    def get_state(self):
        return {"n": self.n}

    def set_state(self, state):
        self.n = state["n"]


@hookimpl
def register_indicators(register):
    register(Tiny)
'''


def _readme_example() -> str:
    """The "write your own indicator" module of the README, as printed there."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("# my_indicator/__init__.py")
    return text[start:text.index("```", start)]


def test_readme_example_indicator_runs(tmp_path: Path) -> None:
    site = _install(tmp_path, "my-indicator", "my_indicator", _readme_example(), "above")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    vault = eth_vault(tmp_path, DAY1)
    cfg = write_config(tmp_path / "c.toml", '[plugins.above]\nlevel = "2682"\n')
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config",
                           str(cfg), "--quiet"], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    got = [json.loads(x) for x in (vault / "derived/above/okx/perps/ETH-USDT-SWAP/above_1m.jsonl").read_text().splitlines()]
    trades = [json.loads(x) for x in DAY1.read_text().splitlines()]
    by_minute: dict[int, int] = {}
    for t in trades:
        by_minute[int(t["ts"]) // 60000] = by_minute.get(int(t["ts"]) // 60000, 0) + (float(t["px"]) > 2682)
    assert [r["count"] for r in got] == [by_minute[m] for m in sorted(by_minute)[:-1]]
    assert any(r["count"] for r in got)


def _install(tmp_path: Path, dist: str, module: str, code: str, entry: str, version: str = "0.3.0") -> Path:
    """pip-install a one-module plugin package into a folder; returns the folder for PYTHONPATH."""
    pkg = tmp_path / dist
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(code)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "{version}"

        [project.entry-points.indicator_core]
        {entry} = "{module}"
    """))
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(pkg)]
    if subprocess.run([*install, "--no-build-isolation"], capture_output=True).returncode != 0:
        subprocess.run(install, check=True, capture_output=True)  # let pip fetch the build backend
    return site


def test_third_party_plugin_installed_as_a_package(tmp_path: Path) -> None:
    site = _install(tmp_path, "tiny-indicator", "tiny_indicator", TINY, "tiny")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    listed = subprocess.run([sys.executable, "-m", "indicator_core", "plugins", "--json"], env=env,
                            capture_output=True, check=True)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["tiny"]["source"] == "tiny-indicator 0.3.0" and rows["tiny"]["enabled"] is True
    assert rows["tiny"]["version"] == "0.3"
    vault = eth_vault(tmp_path, DAY1)
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet"], env=env,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    tiny = [json.loads(x) for x in (vault / "derived/tiny/okx/perps/ETH-USDT-SWAP/tiny_1m.jsonl").read_text().splitlines()]
    volume = [json.loads(x) for x in (vault / "derived/volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl").read_text().splitlines()]
    assert [r["seen"] for r in tiny] == [r["trade_count"] for r in volume] == [r["count"] for r in tiny]
    assert len(tiny) == 5


@pytest.mark.parametrize("text,needle", [
    ("[plugins.volum]\nenabled = true\n", "plugins.volum: no installed indicator"),
    ("[plugins.volume]\nmedian_window = -5\n", "plugins.volume.median_window: Input should be greater than 0 (got -5)"),
    ("[plugins.volume]\nwhale_treshold_usd = 5\n", "plugins.volume.whale_treshold_usd: unknown key"),
    ("[plugins.volume]\nenabled = \"yes\"\n", "plugins.volume.enabled: must be true or false"),
    ("[run]\nfill_empty_bars = 3\n", "run.fill_empty_bars"),
    ("[plugins.candles]\ntimeframes = [\"2m\"]\n", "plugins.candles.timeframes.0"),
    ("[plugins.cvd]\nsession_anchor = \"25:00\"\n", "session anchor must be a time of day"),
    ("[input]\npatterns = [\"trades.jsonl\"]\n", "needs a {date} placeholder"),
    ("[instruments.\"FOO-USDT-SWAP\"]\nkind = \"linear\"\nct_val = \"-1\"\nct_val_ccy = \"FOO\"\n", "instruments.FOO-USDT-SWAP.ct_val"),
    ("this is = not toml [", "not valid TOML"),
])
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys, text: str, needle: str) -> None:
    vault = eth_vault(tmp_path, DAY1)
    cfg = write_config(tmp_path / "bad.toml", text)
    assert run(vault, cfg) == 2
    err = capsys.readouterr().err
    assert needle in err and str(cfg) in err
    assert not (vault / "derived").exists()


def test_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["run", "--vault", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "no vault" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_unknown_instrument_exits_1_with_how_to_declare(tmp_path: Path, capsys) -> None:
    vault = tmp_path / "vault"
    inst_dir(vault, "FOO-BAR-BAZ")
    (inst_dir(vault, "FOO-BAR-BAZ") / "trades_2024-01-01.jsonl").write_text("")
    assert run(vault) == 1
    err = capsys.readouterr().err
    assert "unknown instrument 'FOO-BAR-BAZ'" in err and '[instruments."FOO-BAR-BAZ"]' in err
    cfg = write_config(tmp_path / "c.toml", '[instruments."FOO-BAR-BAZ"]\nkind = "linear"\nct_val = "1"\nct_val_ccy = "FOO"\n')
    assert run(vault, cfg) == 0


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    vault = eth_vault(tmp_path, DAY1)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert "done: 1 instruments, 14051 trades" in done.stdout
    assert "okx/perps/ETH-USDT-SWAP" in done.stdout


def test_the_command_leaves_quickly_with_its_output_and_status(tmp_path: Path) -> None:
    """The command skips Python's teardown once it returned (cli.console): what it printed must still
    come out in full, its status must be the process's, and a profiler run through it must still report."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONUNBUFFERED", None)  # output to a pipe is then held in a buffer until flushed
    vault = tmp_path / "vault"
    (inst_dir(vault, "FOO-BAR-BAZ") / "trades_2024-01-01.jsonl").write_text("")
    shutil.copy(DAY1, inst_dir(vault, "ETH-USDT-SWAP") / DAY1.name)
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 1  # one instrument failed, the other ran
    assert "unknown instrument 'FOO-BAR-BAZ'" in done.stderr
    assert "okx/perps/ETH-USDT-SWAP" in done.stdout and done.stdout.endswith("\n")
    assert (vault / "derived/volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl").stat().st_size > 0
    listed = subprocess.run([sys.executable, "-m", "indicator_core", "plugins", "--json"], env=env,
                            capture_output=True, check=True)
    assert {r["name"] for r in json.loads(listed.stdout)} >= {"volume", "cvd", "vwap", "candles", "wicks"}
    profiled = subprocess.run([sys.executable, "-m", "cProfile", "-m", "indicator_core", "plugins"], env=env,
                              capture_output=True, text=True)
    assert profiled.returncode == 0 and "function calls" in profiled.stdout


def test_the_command_starts_no_blas_threads_unless_asked(tmp_path: Path) -> None:
    """numpy's OpenBLAS would start a thread per core that spins at import; the command never calls BLAS, so its
    entry point asks for none before numpy loads, and keeps a count the user set.  A program that imports the
    package (``import indicator_core`` loads no numpy) or the command line module keeps its own settings."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OPENBLAS_NUM_THREADS", None)
    # the command's own entry point, run up to its exit: the process's threads counted there (numpy is loaded)
    probe = textwrap.dedent("""
        import os, sys
        import indicator_core
        assert "numpy" not in sys.modules
        sys.argv = ["indicators", "plugins", "--json"]
        exit_now = os._exit
        def report(status):
            tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0
            print("PROBE", os.environ.get("OPENBLAS_NUM_THREADS"), tasks, "numpy" in sys.modules,
                  repr(os.environ.get("PYDANTIC_DISABLE_PLUGINS")), file=sys.stderr)
            sys.stderr.flush()
            exit_now(status)
        os._exit = report
        from indicator_core.command import console
        console()
    """)

    def probed(extra: dict[str, str]) -> list[str]:
        done = subprocess.run([sys.executable, "-c", probe], env={**env, **extra}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stderr.splitlines() if line.startswith("PROBE")).split()[1:]

    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    setting, tasks, numpy_loaded, pydantic_plugins = probed({})
    assert setting == "1" and numpy_loaded == "True"
    if tasks != "0":  # Linux lists the process's threads: numpy started none of its own
        assert tasks == "1"
    assert pydantic_plugins == "'__all__'"  # pydantic's own plugins (no use to the config models) not looked for
    assert probed({"OPENBLAS_NUM_THREADS": "2", "PYDANTIC_DISABLE_PLUGINS": ""})[::3] == ["2", "''"]
    embedded = subprocess.run([sys.executable, "-c", "import os, indicator_core.cli; print(os.environ.get('OPENBLAS_NUM_THREADS'))"],
                              env=env, capture_output=True, text=True, check=True)
    assert embedded.stdout.strip() == "None"


def test_the_command_does_not_collect_garbage_while_it_loads(tmp_path: Path) -> None:
    """The command's imports make objects that live as long as the process: no collection walks them while they
    load, they are frozen out of later ones, and the collector is on for the command itself, its young generation
    collected every 10,000 new containers.  A program that imports the command line module keeps its collector as
    it was."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    probe = textwrap.dedent("""
        import gc, os, sys
        during, entered = [], []
        def loading():  # between the entry point's start and the end of the command line module's import
            cli = sys.modules.get("indicator_core.cli")
            return bool(entered) and (cli is None or not hasattr(cli, "console"))
        gc.callbacks.append(lambda phase, info: phase == "start" and during.append(loading()))
        sys.argv = ["indicators", "plugins", "--json"]
        exit_now = os._exit
        def report(status):
            print("PROBE", sum(during), len(during), gc.get_freeze_count(), gc.isenabled(), gc.get_threshold()[0],
                  file=sys.stderr)
            sys.stderr.flush()
            exit_now(status)
        os._exit = report
        from indicator_core.command import console
        entered.append(True)
        console()
    """)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    while_loading, collections, frozen, enabled, young = next(
        line for line in done.stderr.splitlines() if line.startswith("PROBE")).split()[1:]
    assert while_loading == "0", f"{while_loading} of {collections} collections ran while the command loaded"
    assert int(frozen) > 10_000 and enabled == "True" and young == "10000"
    embedded = subprocess.run([sys.executable, "-c", "import gc; before = gc.get_threshold(); import indicator_core.cli; "
                               "print(gc.get_freeze_count(), gc.isenabled(), gc.get_threshold() == before)"],
                              env=env, capture_output=True, text=True, check=True)
    assert embedded.stdout.split() == ["0", "True", "True"]


def test_the_command_keeps_freed_column_memory_for_reuse(monkeypatch) -> None:
    """On Linux the command asks glibc to keep the blocks a chunk's columns are freed into (no unmapping, no trim),
    so that the next chunk's columns reuse warm pages; elsewhere it asks nothing.  Only the command's process:
    an embedding import of the command line module asks nothing either."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    probe = textwrap.dedent("""
        import ctypes, os, sys
        asked = []
        class LibC:
            def mallopt(self, param, value):
                asked.append((param, value))
                return 1
        ctypes.CDLL = lambda name: LibC()
        sys.argv = ["indicators", "plugins", "--json"]
        exit_now = os._exit
        def report(status):
            print("PROBE", asked, file=sys.stderr)
            sys.stderr.flush()
            exit_now(status)
        os._exit = report
        if sys.argv[0] != "embedded":
            from indicator_core.command import console
            console()
    """)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    asked = next(line for line in done.stderr.splitlines() if line.startswith("PROBE"))
    from indicator_core import command

    if sys.platform.startswith("linux"):
        assert asked == f"PROBE {[(command.M_MMAP_THRESHOLD, 64 << 20), (command.M_TRIM_THRESHOLD, 256 << 20)]}"
    else:
        assert asked == "PROBE []"
    monkeypatch.setattr(sys, "platform", "win32")
    assert command.keep_freed_memory() is False
    embedded = subprocess.run([sys.executable, "-c", "import ctypes\nasked = []\n"
                               "ctypes.CDLL = lambda name: asked.append(name)\n"
                               "import indicator_core.cli\nprint(asked)"], env=env, capture_output=True, text=True, check=True)
    assert embedded.stdout.strip() == "[]"


def test_the_spec_copy_in_docs_is_current() -> None:
    """docs/SPEC.md is the output contract as shipped; it must not drift from the project's spec."""
    shared = REPO.parent / "shared" / "SPEC.md"
    if not shared.exists():
        pytest.skip("no shared/SPEC.md beside this checkout")
    assert (REPO / "docs" / "SPEC.md").read_text(encoding="utf-8") == shared.read_text(encoding="utf-8")


def test_archiving_a_finished_day_does_not_stop_the_stream(tmp_path: Path) -> None:
    both = eth_vault(tmp_path / "a", DAY1, DAY2)
    assert run(both) == 0
    vault = eth_vault(tmp_path / "b", DAY1)
    assert run(vault) == 0
    folder = inst_dir(vault, "ETH-USDT-SWAP")
    (folder / DAY1.name).rename(tmp_path / DAY1.name)  # moved to cold storage, read to its end
    shutil.copy(DAY2, folder / DAY2.name)
    assert run(vault) == 0
    assert outputs(vault) == outputs(both)


def test_a_half_read_file_that_vanished_is_an_error(tmp_path: Path, capsys) -> None:
    vault = eth_vault(tmp_path, DAY1)
    path = inst_dir(vault, "ETH-USDT-SWAP") / DAY1.name
    full = path.read_bytes()
    path.write_bytes(full[: len(full) // 2 + 1])  # a writer still appending
    assert run(vault) == 0
    path.unlink()
    before = outputs(vault)
    assert run(vault) == 1
    err = capsys.readouterr().err
    assert DAY1.name in err and "had not been read to its end" in err
    assert outputs(vault) == before


def test_readme_config_file_is_valid(tmp_path: Path, capsys) -> None:
    """The config shown in the README is accepted as it is printed."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("# indicators.toml")
    cfg = write_config(tmp_path / "indicators.toml", text[start:text.index("```", start)])
    shutil.copy(OKX / "instruments-swap.json", tmp_path / "instruments-swap.json")
    vault = eth_vault(tmp_path, DAY1)
    assert main(["plugins", "--json", "--config", str(cfg)]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    # every indicator runs unless it is one that waits to be asked for (the footprint: enabled = true)
    assert all(r["enabled"] for r in rows.values() if r["name"] != "footprint") and not rows["footprint"]["enabled"]
    assert run(vault, cfg) == 0  # vault given on the command line wins over `vault = "Vault"`
    assert (vault / "derived" / "candles" / "okx" / "perps" / "ETH-USDT-SWAP" / "candles_5m.jsonl").exists()


BY_CHUNK = '''
from indicator_core import Indicator, hookimpl
from indicator_core_plugins.volume import VolumeAnalyzer
from indicator_core_plugins.whales import Whales

SPANS = []  # minutes per on_trades batch, for the test to look at


class ByChunk(Indicator):
    """Counts each minute's trades from batches of many minutes."""

    name = "by_chunk"
    trades_by_minute = False

    def __init__(self, instrument, params):
        super().__init__(instrument, params)
        self.pending = {}

    def outputs(self):
        return ["by_chunk_1m"]

    def on_trades(self, trades, emit):
        minutes = (trades.ts // 60000).tolist()
        assert minutes == sorted(minutes)  # arrival order (the test files have no late trade)
        SPANS.append(len(set(minutes)))
        for m in minutes:
            self.pending[m] = self.pending.get(m, 0) + 1

    def on_bar(self, bar, emit):
        emit("by_chunk_1m", {"timestamp_utc": bar.timestamp_utc, "seen": self.pending.pop(bar.minute, 0),
                             "count": bar.trade_count})

    def get_state(self):
        return {"pending": {str(m): n for m, n in self.pending.items()}}

    def set_state(self, state):
        self.pending = {int(m): n for m, n in state["pending"].items()}


class VolumeByMinute(VolumeAnalyzer):
    """The volume analyzer fed a minute at a time, as before it took whole chunks."""

    name = "volume_by_minute"
    trades_by_minute = True


class WhalesByMinute(Whales):
    """The whale trades fed a minute at a time, as before they took whole chunks."""

    name = "whales_by_minute"
    trades_by_minute = True


@hookimpl
def register_indicators(register):
    register(ByChunk)
    register(VolumeByMinute)
    register(WhalesByMinute)
'''


def test_trades_by_the_chunk_arrive_once_before_their_bar(tmp_path: Path, monkeypatch) -> None:
    """``trades_by_minute = False``: every accepted trade once, before its bar closes, in batches of many minutes;
    the volume analyzer and the whale trades (which take them so) write what they write fed a minute at a time,
    however the input is cut."""
    from indicator_core import plugins

    pkg = tmp_path / "pkgs" / "by_chunk"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(BY_CHUNK)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setitem(plugins.BUILTIN_PLUGINS, "by_chunk", "by_chunk")
    import importlib

    spans = importlib.import_module("by_chunk").SPANS
    cfg = write_config(tmp_path / "c.toml", "[run]\nbatch_bytes = 100000\n"
                                            "[plugins.whales]\nthreshold = \"20000\"\n"
                                            "[plugins.whales_by_minute]\nthreshold = \"20000\"\n")
    from indicator_core_plugins.whales import Whales

    assert not Whales.trades_by_minute  # the shipped whales take chunks
    whole = eth_vault(tmp_path / "whole", DAY1, DAY2)
    assert run(whole, cfg) == 0
    assert max(spans) > 1  # batches of several minutes did arrive
    step = eth_vault(tmp_path / "step", DAY1)
    assert run(step, cfg) == 0
    shutil.copy(DAY2, inst_dir(step, "ETH-USDT-SWAP") / DAY2.name)
    assert run(step, cfg) == 0
    for vault in (whole, step):
        d = vault / "derived"
        got = [json.loads(x) for x in (d / "by_chunk/okx/perps/ETH-USDT-SWAP/by_chunk_1m.jsonl").read_text().splitlines()]
        assert got and [r["seen"] for r in got] == [r["count"] for r in got]
        assert sum(r["seen"] for r in got) > 1000
        chunked = (d / "volume/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl").read_bytes()
        whales = [json.loads(x)["whale_count"] for x in chunked.splitlines()]
        assert 0 in whales and max(whales) > 1  # minutes with and without whale trades
        assert chunked == (d / "volume_by_minute/okx/perps/ETH-USDT-SWAP/volume_1m.jsonl").read_bytes()
        big = (d / "whales/okx/perps/ETH-USDT-SWAP/whales.jsonl").read_bytes()
        assert big.count(b"\n") > 100 and big == (d / "whales_by_minute/okx/perps/ETH-USDT-SWAP/whales.jsonl").read_bytes()
    assert outputs(step) == outputs(whole)
