"""The compiled kernels: built where a C compiler is at hand, switched off by the environment, same outputs."""

from __future__ import annotations

from tests.kernel_paths import rejects_of  # noqa: E402

import os
import shutil
import subprocess
import sys
import sysconfig
from types import SimpleNamespace

import pytest

from indicator_core import native
from tests.vaults import ETH_PERP, OKX, REPO, inst_dir, outputs


def test_the_kernel_is_built_where_a_compiler_is_at_hand() -> None:
    cc = (sysconfig.get_config_var("CC") or "").split()
    if sys.platform == "win32" or not cc or shutil.which(cc[0]) is None:
        pytest.skip("no C compiler here: the pure paths run (tested everywhere)")
    assert native.load("trades") is not None, "setup.py did not build indicator_core._native_trades"
    assert native.load("books") is not None, "setup.py did not build indicator_core._native_books"


def test_pure_paths_are_asked_for_by_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.load("trades") is None and native.load("books") is None
    assert "pure" in native.describe()
    monkeypatch.setenv(native.PURE_ENV, "0")
    assert not native.pure_requested()


def _run(vault, pure: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(native.PURE_ENV, None)
    if pure:
        env[native.PURE_ENV] = "1"
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--quiet", "--jobs", "1"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compiled_and_pure_runs_write_the_same_bytes(tmp_path) -> None:
    """Real recorded trades (JSON lines with a bad line added, and an OKX archive CSV) through both paths."""
    if native.load("trades") is None:
        pytest.skip("the compiled kernel is not built in this install")
    trees = {}
    for pure in (False, True):
        vault = tmp_path / ("pure" if pure else "compiled")
        eth = inst_dir(vault, "ETH-USDT-SWAP")
        shutil.copytree(ETH_PERP, eth, dirs_exist_ok=True)
        day = sorted(eth.glob("*.jsonl"))[0]
        lines = day.read_bytes().splitlines(keepends=True)
        lines.insert(len(lines) // 2, b'{"instId":"ETH-USDT-SWAP","tradeId":"x"}\n')  # a reject in mid-chunk
        day.write_bytes(b"".join(lines))
        matic = inst_dir(vault, "MATIC-USDT-SWAP")
        body = (OKX / "MATIC-USDT-SWAP-trades-2023-08-21.csv").read_bytes()
        body += b"MATIC-USDT-SWAP,104136707,buy,0.5750,1.0,1692547320001\n"  # the next minute closes the first
        (matic / "MATIC-USDT-SWAP-trades-2023-08-21.csv").write_bytes(body)
        _run(vault, pure)
        trees[pure] = outputs(vault)
    assert trees[False] and trees[False] == trees[True]
    assert any("MATIC" in name for name in trees[False])


@pytest.mark.skipif(native.load("trades") is None, reason="the compiled kernel is not built in this install")
@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 64 * 255 - 1, 64 * 255, 64 * 255 + 1, 64 * 256 + 7, 100_003])
def test_count_lines_counts_every_line_end(size: int) -> None:
    """Around the kernel's block sizes, with every byte a line end (each counter at its limit) and at random."""
    import random

    kernel = native.load("trades")
    rnd = random.Random(size)
    for data in (b"\n" * size, bytes(rnd.choice(b"\n\nab{}") for _ in range(size)), b"x" * size):
        assert kernel.count_lines(data) == data.count(b"\n")
        assert kernel.line_ends(data) == b"".join(i.to_bytes(8, sys.byteorder) for i, c in enumerate(data) if c == 10)


@pytest.mark.skipif(native.load("trades") is None, reason="the compiled kernel is not built in this install")
@pytest.mark.parametrize("data,n", [(b"a\nbb\nccc", 9), (b"a\nbb\nccc", 5), (b"a\nbb\nccc", 4), (b"abc", 3),
                                    (b"\n", 1), (b"", 0), (b"x\n" * 1000 + b"partial", 2007)])
def test_take_lines_copies_the_complete_lines_and_counts_them(data: bytes, n: int) -> None:
    scratch = bytearray(data) + bytearray(b"garbage after n")
    taken = native.load("trades").take_lines(scratch, n)
    cut = data[:n].rfind(b"\n") + 1
    if cut == 0:
        assert taken is None
    else:
        assert taken == (data[:cut], data[:cut].count(b"\n"))
        assert isinstance(taken[0], bytes)


@pytest.mark.parametrize("batch", [1000, 70_000])
def test_chunks_read_through_the_kernel_or_mapped_equal_the_plain_reading(tmp_path, monkeypatch, batch) -> None:
    """Chunk bytes, line numbers and cursors are the same with the kernel's reader, with closed days read
    through memory maps, and with plain reads; from the start and from cursors inside a closed day."""
    from indicator_core.sources import files as files_module
    from indicator_core.sources.files import Cursor, LineNumbers, list_files, read_chunks

    folder = tmp_path / "okx" / "perps" / "BTC-USDT-SWAP"  # an OKX folder: its JSON lines are read mapped
    folder.mkdir(parents=True)
    lines = [b'{"k":"%d"}\n' % i for i in range(30000)]
    (folder / "trades_2024-01-01.jsonl").write_bytes(b"".join(lines))
    (folder / "trades_2024-01-02.jsonl").write_bytes(b"".join(lines[:50]) + b"x" * 90_000 + b"\n"
                                                     + b"".join(lines[:900]))  # a line longer than a chunk
    (folder / "trades_2024-01-03.jsonl").write_bytes(b"".join(lines[:700]) + b'{"half":')  # a partial last line
    (folder / "trades_2024-01-04.jsonl").write_bytes(b"".join(lines[:10]))
    (folder / "trades_2024-01-05.jsonl").write_bytes(b"")
    (folder / "trades_2024-01-06.jsonl").write_bytes(b"x" * 5000 + b"\n" + b"".join(lines[:10]))  # still written
    from indicator_core.builtin_formats import FORMATS
    from indicator_core.sources.formats import FormatTable

    files = list_files(folder, "BTC-USDT-SWAP", ["trades_{date}.jsonl"], [], formats=FormatTable(FORMATS))

    def chunks(start: Cursor, mapped: bool) -> list:
        """The chunks as the pass sees them: numbered in order once parsed (a mapped one is counted by its parse)."""
        numbers, got = LineNumbers(), []
        for c in read_chunks(files, start, None, batch, mapped):
            n = c.lines if c.lines is not None else bytes(c.buf).count(b"\n")
            numbers.settle(c, SimpleNamespace(lines=n, rejects=[]))
            got.append((bytes(c.buf), c.first_line, c.end, n))
        return got

    assert files_module.MAP_CLOSED_FILES == (os.name == "posix")  # the compiled reader and the numpy one alike
    monkeypatch.setattr(files_module, "MAP_CLOSED_FILES", True)
    starts = [Cursor(), Cursor("trades_2024-01-01.jsonl", 11 * 1000 + 7 * 4, 1007),
              Cursor("trades_2024-01-02.jsonl", 50 * 10, 50)]
    for start in starts:
        mapped = chunks(start, True)
        assert any(type(c.buf) is memoryview for c in read_chunks(files, start, None, batch, True))
        if native.load("trades") is not None:  # the reader leaves a mapped chunk's lines to its parse to count
            assert any(c.lines is None and c.end.line is None for c in read_chunks(files, start, None, batch, True))
        plain = chunks(start, False)
        assert mapped == plain
        monkeypatch.setattr(files_module, "_TAKE_LINES", None)
        assert plain == chunks(start, False)
        # without the kernel, the chunks read() for a parser that counts (the open day's, and every day's where
        # nothing is mapped: Windows) are counted by it too
        assert chunks(start, True) == plain
        assert any(type(c.buf) is bytes and c.lines is None for c in read_chunks(files, start, None, batch, True))
        monkeypatch.setattr(files_module, "MAP_CLOSED_FILES", False)
        assert chunks(start, True) == plain
        assert all(c.lines is not None or c.line_ends is not None
                   for c in read_chunks(files, start, None, batch, False))
        monkeypatch.undo()
        monkeypatch.setattr(files_module, "MAP_CLOSED_FILES", True)
    whole = chunks(Cursor(), True)
    assert len(whole) > 10 and b"".join(b for b, *_ in whole).count(b"\n") == 30000 + 951 + 701 + 10 + 11

    def refused(*args, **kw):
        raise OSError(19, "No such device")  # what a file system that cannot map files answers

    monkeypatch.setattr(files_module.mmap, "mmap", refused)
    assert chunks(Cursor(), True) == whole  # read with read() instead


@pytest.mark.skipif(native.load("trades") is None, reason="the compiled kernel is not built in this install")
def test_mapped_windows_parse_as_bytes_do(tmp_path) -> None:
    """The compiled parser reads a view of a mapped window in place: the same columns as from bytes."""
    import mmap

    from indicator_core.sources import columnar

    body = (ETH_PERP / sorted(p.name for p in ETH_PERP.glob("*.jsonl"))[0]).read_bytes()
    body = body.replace(b"\n", b"\n" + b'{"instId":"ETH-USDT-SWAP","tradeId":"x"}\n', 1)  # a reject on line 2
    path = tmp_path / "day.jsonl"
    path.write_bytes(body)
    with open(path, "rb") as f:
        view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
    a = columnar.parse_chunk(view, 1, "ETH-USDT-SWAP")
    b = columnar.parse_chunk(body, 1, "ETH-USDT-SWAP")
    assert a.lines == b.lines and a.rejects == b.rejects and [r.line for r in a.rejects] == [2]
    for name in ("ts", "trade_id", "px_m", "sz_m", "is_buy"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist()


@pytest.mark.skipif(native.load("trades") is None, reason="the compiled kernel is not built in this install")
def test_mapped_days_counted_by_their_parse_number_rejects_and_cursors_as_plain_reads(tmp_path, monkeypatch) -> None:
    """A closed day read through memory maps in many chunks, each counted only by its parse: the rejects of
    every chunk carry their lines in the file, and every committed cursor names the lines before its offset;
    the outputs are those of the pure path."""
    import orjson

    from indicator_core import storage
    from indicator_core.sources import files as files_module
    from tests.vaults import run, write_config

    monkeypatch.setattr(files_module, "MAP_CLOSED_FILES", True)
    bad = b'{"instId":"ETH-USDT-SWAP","tradeId":"x"}\n'
    trees = {}
    for pure in (False, True):
        vault = tmp_path / ("pure" if pure else "compiled")
        eth = inst_dir(vault, "ETH-USDT-SWAP")
        shutil.copytree(ETH_PERP, eth, dirs_exist_ok=True)
        days = sorted(eth.glob("*.jsonl"))
        lines = days[0].read_bytes().splitlines(keepends=True)
        for at in (3, len(lines) // 3, len(lines) // 2, len(lines) - 2):  # rejects in the first chunk and later ones
            lines.insert(at, bad)
        days[0].write_bytes(b"".join(lines))
        if len(days) == 1:  # a later day makes the first one closed (read through maps)
            (eth / "trades_2099-01-01.jsonl").write_bytes(b"")
        cfg = write_config(tmp_path / "run.toml", "[run]\nbatch_bytes = 20000\ncommit_seconds = 0.000001\n")
        states: list[dict] = []
        real = storage.write_state_bytes

        def capture(path, data, real=real, states=states):
            states.append(orjson.loads(data))
            real(path, data)

        import indicator_core.runtime.consumer as engine

        monkeypatch.setattr(engine, "write_state_bytes", capture)
        if pure:  # the kernel switched off where it was loaded: numpy and Python read the same mapped chunks
            from indicator_core import fastpath
            from indicator_core.sources import columnar, parsed

            for module in (columnar, files_module, parsed, fastpath):
                monkeypatch.setattr(module, "_KERNEL", None)
            monkeypatch.setattr(files_module, "_TAKE_LINES", None)
        assert run(vault, cfg) == 0
        cursors = [s["cursor"] for s in states if s.get("cursor", {}).get("file")]
        assert len({c["offset"] for c in cursors}) > 5, "the day was not read in many committed chunks"
        for c in cursors:
            body = (eth / c["file"]).read_bytes()
            assert c["line"] == body[: c["offset"]].count(b"\n"), c
        trees[pure] = outputs(vault)
    assert trees[False] == trees[True]
    logged = trees[False]["quality/okx/perps/ETH-USDT-SWAP/rejects.jsonl"].splitlines()
    assert [orjson.loads(r)["line"] for r in logged] == [i + 1 for i, line in enumerate(lines) if line == bad]


@pytest.mark.skipif(native.load("trades") is None, reason="the compiled kernel is not built in this install")
@pytest.mark.parametrize("junk", [0, 1, 50, 5000])
def test_a_chunk_counted_by_its_parse_holds_more_short_lines_than_room_was_made_for(junk: int) -> None:
    """Room for the lines is made at the layout's shortest line; lines shorter than that (junk, rejected) may
    outnumber it, and the parse then counts first: the same trades, rejects and count as the reference."""
    from indicator_core.sources import columnar, okx_jsonl

    good = [b'{"instId":"BTC-USDT-SWAP","tradeId":"%d","px":"60000.%d","sz":"0.%d","side":"buy","ts":"1732406400%03d"}\n'
            % (100 + i, i, i + 1, i) for i in range(8)]
    buf = b"".join(good[:4]) + b"{}\n" * junk + b"".join(good[4:])
    got = columnar.parse_chunk(buf, 7, "BTC-USDT-SWAP")  # no count given: the parse counts
    want = okx_jsonl.parse_lines(buf, 7, "BTC-USDT-SWAP")
    assert got.lines == want.lines == 8 + junk
    assert [x[:2] for x in rejects_of(got)] == [x[:2] for x in rejects_of(want)]
    for name in ("ts", "trade_id", "px_m", "px_s", "sz_m", "sz_s", "is_buy"):
        assert getattr(got, name).tolist() == getattr(want, name).tolist()


@pytest.mark.skipif(native.load("trades") is None, reason="the compiled kernel is not built in this install")
@pytest.mark.parametrize("tail", [b"long", b"short", b"junk"])
def test_room_made_from_a_chunks_head_holds_its_lines_or_they_are_counted(tail: bytes) -> None:
    """A large chunk's columns get room for the lines its first 64 KiB hold per byte, plus 10%: a tail of
    shorter lines than the head's overflows it, and is counted, then parsed again; the same result either way."""
    from indicator_core.sources import columnar, okx_jsonl

    def line(i: int, px: bytes, sz: bytes) -> bytes:
        return (b'{"instId":"BTC-USDT-SWAP","tradeId":"%d","px":"%s","sz":"%s","side":"sell","ts":"1732406400%03d"}\n'
                % (1000 + i, px, sz, i % 1000))

    head = [line(i, b"60000.12345", b"0.123456") for i in range(1200)]  # ~140 KiB, longer than the sample
    rest = {b"long": [line(1200 + i, b"61000.54321", b"0.654321") for i in range(3000)],
            b"short": [line(1200 + i, b"6", b"1") for i in range(3000)],
            b"junk": [b"{}\n"] * 3000}[tail]
    buf = b"".join(head + rest)
    layout = columnar._layout_of(buf, None, "BTC-USDT-SWAP")
    room = columnar._room(buf, layout)
    assert (room >= len(head) + len(rest)) == (tail == b"long")  # the other two overflow their room
    got = columnar.parse_chunk(buf, 3, "BTC-USDT-SWAP")
    want = okx_jsonl.parse_lines(buf, 3, "BTC-USDT-SWAP")
    assert got.lines == want.lines == len(head) + len(rest)
    assert [x[:2] for x in rejects_of(got)] == [x[:2] for x in rejects_of(want)]
    for name in ("ts", "trade_id", "count", "px_m", "px_s", "sz_m", "sz_s", "is_buy"):
        assert getattr(got, name).tolist() == getattr(want, name).tolist()
