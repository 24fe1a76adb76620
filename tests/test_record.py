"""`indicators record` against a local replay server: nothing lost, nothing doubled, every unfilled gap logged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from indicator_core.config import load_config
from indicator_core.record.recorder import Recorder
from tests.replay_server import Fault, ReplayServer, Timeline, okx_trade_frames

INST = "BTC-USDT-SWAP"
LABEL = f"okx/perps/{INST}"


def config(tmp: Path, server: ReplayServer, venue: str = "okx", instruments: list[str] | None = None,
           channels: str = '["trades"]', extra: str = "") -> Path:
    path = tmp / "record.toml"
    path.write_text(f"""
[record]
instruments = {orjson.dumps(instruments or [LABEL]).decode()}
channels = {channels}
fsync_seconds = 0.05
ping_seconds = 0.3
pong_seconds = 0.3
backoff_first_seconds = 0.05
backoff_max_seconds = 0.2
{extra}
[record.endpoints]
{venue}_ws = "{server.ws_url}"
{venue}_rest = "{server.rest_url}"
""", encoding="utf-8")
    return path


def record(vault: Path, cfg_path: Path, server: ReplayServer, settle: float = 0.5) -> Recorder:
    rec = Recorder(vault, load_config(cfg_path))

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(rec.run(stop))
        deadline = time.monotonic() + 60
        while not server.done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(settle)
        stop.set()
        await task

    asyncio.run(main())
    server.stop()
    return rec


def okx_ids(vault: Path, label: str = LABEL, live: bool = False) -> list[int]:
    """The trade ids in the recorded files; ``live``: of a file the recorder may be writing into this instant,
    its complete lines only (a push read half-written is not a torn line)."""
    ids = []
    for path in sorted((vault / "raw" / "trades" / label).glob("trades_*.jsonl")):
        data = path.read_bytes()
        if live:
            data = data[:data.rfind(b"\n") + 1]
        for line in data.splitlines():
            doc = orjson.loads(line)
            for item in doc["data"] if "data" in doc else [doc]:
                ids.append(int(item["tradeId"]))
    return ids


def events(vault: Path, label: str = LABEL) -> list[dict]:
    path = vault / "derived" / "quality" / label / "recorder.jsonl"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


@pytest.mark.parametrize("fault", [None, "drop", "stall", "notice", "malformed", "skip"])
def test_okx_trades_nothing_lost_nothing_doubled(tmp_path: Path, fault: str | None) -> None:
    frames, rest = okx_trade_frames(INST, 600, per_push=2)
    faults = {None: [], "drop": [Fault(100, "drop")], "stall": [Fault(100, "stall")],
              "notice": [Fault(100, "notice", 40)], "malformed": [Fault(50, "malformed")],
              "skip": [Fault(120, "skip", 15)]}[fault]
    server = ReplayServer(Timeline("okx", frames, faults, trades=rest)).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server), server)
    ids = okx_ids(vault)
    assert ids == list(range(1000, 1600)), fault  # every trade, once, in id order
    log = events(vault)
    kinds = [e["event"] for e in log]
    assert "gap" not in kinds
    if fault in ("drop", "stall", "skip"):
        assert any(e["event"] == "backfill" and e["trades"] > 0 for e in log)
    if fault in ("drop", "stall"):
        assert kinds.count("connect") >= 2
    if fault == "notice":
        assert "notice" in kinds and "switch" in kinds
        assert not any(e["event"] == "backfill" for e in log)  # the hand-over lost nothing to fetch
        assert len(set(n for _, n in server.sent)) == 2 and len(server.sent) > 300  # both carried frames
    if fault == "malformed":
        assert "malformed" in kinds


def test_a_connection_ends_on_stop_even_when_its_cancellation_is_lost(monkeypatch) -> None:
    """A cancellation can be lost where it meets a frame (Python 3.11's ``asyncio.wait_for`` returns the frame
    instead): the connection must still end once the recorder stops, not go on exchanging pings and pongs."""
    from indicator_core.record import connection
    from indicator_core.record.venues import Okx, Target

    stop = asyncio.Event()

    class Socket:  # a venue that keeps answering pings; its first pong arrives the moment the recorder stops
        first = True

        async def send(self, message: str) -> None:
            pass

        async def recv(self) -> str:
            if self.first:
                self.first = False
                await stop.wait()
            else:
                await asyncio.sleep(0.02)
            return "pong"

        async def ping(self) -> None:
            pass

        async def close(self) -> None:
            pass

    async def connect(*args, **kwargs) -> Socket:
        return Socket()

    monkeypatch.setattr(connection, "connect", connect)
    venue = Okx([Target(LABEL, ("trades",))], {"okx_ws": "ws://127.0.0.1:9/ws", "okx_rest": "http://127.0.0.1:9"})

    async def main() -> bool:
        session = connection.Session(venue, connection.Events(), connection.Timing(0.3, 0.3, 0.05, 0.2), stop)
        task = asyncio.ensure_future(session.run())
        await asyncio.sleep(0.2)
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=5)
        task.cancel()
        return bool(done)

    assert asyncio.run(main()), "the session went on after stop"


# --- the command line --------------------------------------------------------------------------
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from tests.test_notify import Receiver  # noqa: E402
from tests.vaults import default_sigint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def command(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indicator_core", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=default_sigint if os.name == "posix" else None)


def wait_for(check, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.skipif(sys.platform == "win32", reason="kills the recorder with SIGKILL and stops it with SIGINT")
def test_kill_9_mid_stream_then_restart_fills_the_hole(tmp_path: Path) -> None:
    """The recorder killed with SIGKILL while trades stream in: every file stays readable line by line; a cut
    last line (as a power loss could leave) is cut back at the next start; the next start fetches what was
    missed while it was down, so every trade is there once."""
    frames, rest = okx_trade_frames(INST, 3000)
    server = ReplayServer(Timeline("okx", frames, interval=0.003, trades=rest)).start()
    vault = tmp_path / "v"
    cfg = config(tmp_path, server)
    first = command("record", "--vault", str(vault), "--config", str(cfg), "--quiet")
    folder = vault / "raw" / "trades" / LABEL
    wait_for(lambda: len(okx_ids(vault, live=True)) > 300 if folder.exists() else False)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    day_file = sorted(folder.glob("trades_*.jsonl"))[-1]
    kept = okx_ids(vault)
    with open(day_file, "ab") as f:  # a torn write
        f.write(b'{"arg":{"channel":"trades","instId":"BTC-USDT-SW')
    time.sleep(0.3)  # trades go on while it is down
    second = command("record", "--vault", str(vault), "--config", str(cfg), "--quiet", "--seconds", "60")
    wait_for(server.done.is_set, 60)
    time.sleep(0.5)
    second.send_signal(signal.SIGINT)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()
    server.stop()
    for path in folder.glob("trades_*.jsonl"):
        data = path.read_bytes()
        assert data.endswith(b"\n")
        for line in data.splitlines():
            orjson.loads(line)  # every line whole
    ids = okx_ids(vault)
    assert ids[:len(kept)] == kept and ids == list(range(1000, 4000))
    log = events(vault)
    assert [e["dropped_bytes"] for e in log if e["event"] == "repaired"] == [48]
    fills = [e for e in log if e["event"] == "backfill"]
    assert fills and fills[-1]["after_id"] == str(kept[-1]) and fills[-1]["trades"] > 0


def test_a_rest_backfill_that_fails_once_is_tried_again(tmp_path: Path) -> None:
    frames, rest = okx_trade_frames(INST, 500)
    server = ReplayServer(Timeline("okx", frames, [Fault(100, "rest_fail", 1), Fault(100, "drop")],
                                   trades=rest)).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server), server)
    assert okx_ids(vault) == list(range(1000, 1500))
    assert sum(1 for p in server.rest_requests if "history-trades" in p) >= 2  # the failed one, then again
    assert "gap" not in [e["event"] for e in events(vault)]


def test_what_the_history_cannot_return_is_a_logged_gap(tmp_path: Path) -> None:
    frames, rest = okx_trade_frames(INST, 400)
    lost = {str(i) for i in range(1150, 1160)}  # the venue's history lacks these
    server = ReplayServer(Timeline("okx", frames, [Fault(140, "skip", 30)],
                                   trades=[t for t in rest if t["tradeId"] not in lost])).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server), server)
    ids = okx_ids(vault)
    assert ids == [i for i in range(1000, 1400) if str(i) not in lost]
    gaps = [e for e in events(vault) if e["event"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["missing"] == 10


@pytest.mark.parametrize("body,message", [
    ("[record]\ninstruments = []\n", "[record] instruments is empty"),
    ('[record]\ninstruments = ["kraken/perps/XBTUSD"]\n', "records okx, binance and bybit"),
    ('[record]\ninstruments = ["okx/perps/BTC-USDT-SWAP"]\nchannels = ["tape"]\n', "record.channels.0"),
    ('[record]\ninstruments = ["BTC-USDT-SWAP"]\n', "is not exchange/market/INST_ID"),
])
def test_bad_record_configs_are_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(body)
    proc = command("record", "--vault", str(tmp_path / "v"), "--config", str(cfg))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and message in err.decode(), err.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="stops the command with SIGINT")
def test_live_records_runs_and_delivers_a_whale_to_the_webhook(tmp_path: Path) -> None:
    """`indicators live`: the recorder and the follower in one command; a whale trade pushed by the venue
    reaches the bot's webhook; Ctrl-C stops both with everything committed."""
    # times as they are played (5 ms apart, from a moment after the start): the follower closes minutes by the
    # clock, so trades of a minute already closed would be late
    frames, rest = okx_trade_frames(INST, 400, t0=int(time.time() * 1000) + 3000, step_ms=5)
    whale = orjson.loads(frames[200])
    whale["data"][0]["sz"] = "500"  # 5 BTC at ~95,000: a $475,000 trade
    frames[200] = orjson.dumps(whale)
    for t in rest:
        if t["tradeId"] == whale["data"][0]["tradeId"]:
            t["sz"] = "500"
    server = ReplayServer(Timeline("okx", frames, interval=0.005, trades=rest)).start()
    bot = Receiver()
    vault = tmp_path / "v"
    cfg = config(tmp_path, server, extra="")
    cfg.write_text(cfg.read_text() + f'\n[notify.bot]\nkind = "webhook"\nurl = "{bot.url}"\nstreams = ["whales"]\n'
                   'retry_max_seconds = 0.2\nwait_seconds = 5\n')
    proc = command("live", "--vault", str(vault), "--config", str(cfg), "--poll", "0.05", "--grace", "0.5")
    try:
        wait_for(lambda: bot.bodies, 60)
        wait_for(server.done.is_set, 60)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        bot.close()
        server.stop()
    assert proc.returncode == 0, err.decode()
    assert [b["signal_id"] for b in bot.bodies] == [f"{INST}|{whale['data'][0]['tradeId']}"]
    assert okx_ids(vault) == list(range(1000, 1400))
    whales = (vault / "derived" / "whales" / LABEL / "whales.jsonl").read_bytes().splitlines()
    assert [orjson.loads(w)["trade_id"] for w in whales] == [whale["data"][0]["tradeId"]]  # committed on Ctrl-C


# --- real recorded frames of each venue -----------------------------------------------------------
SHARED = ROOT.parent / "shared" / "data"
from tests.vaults import DATA  # noqa: E402


def lines_of(path: Path) -> list[bytes]:
    return [x for x in path.read_bytes().splitlines() if x.strip()]


@pytest.mark.skipif(not (SHARED / "binance" / "ws-usdm-2021-07-22.jsonl").exists(), reason="shared data not here")
def test_binance_real_frames_and_rest_snapshots(tmp_path: Path, capsys) -> None:
    """Real USDⓈ-M aggTrade and depth frames of four symbols, replayed: every frame written once, to its
    symbol's folder, as received; a REST depth snapshot fetched after the first update of each book; the
    books then synchronise and chain with no gap (SPEC 15), read by `indicators run`."""
    from indicator_core.cli import main

    frames, snapshots = [], {}
    for line in lines_of(SHARED / "binance" / "ws-usdm-2021-07-22.jsonl"):
        doc = orjson.loads(line)
        if "lastUpdateId" in doc:
            snapshots[doc.pop("snapshot_of")] = doc
        else:
            frames.append(line)
    symbols = ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"]
    server = ReplayServer(Timeline("binance", frames, snapshots=snapshots)).start()
    vault = tmp_path / "v"
    labels = [f"binance/perps/{s}" for s in symbols]
    rec = record(vault, config(tmp_path, server, "binance", labels, '["trades", "books"]',
                               extra="backfill_max_minutes = 0"), server)
    assert rec.counts.gaps == 0
    for symbol, label in zip(symbols, labels):
        served = [f for f in frames if orjson.loads(f)["data"]["s"] == symbol]
        written_trades = lines_of(next((vault / "raw" / "trades" / label).glob("*.jsonl")))
        written_books = lines_of(next((vault / "raw" / "books" / label).glob("*.jsonl")))
        assert written_trades and written_trades == [f for f in served if b'"aggTrade"' in f]
        snaps = [x for x in written_books if b"lastUpdateId" in x]
        assert len(snaps) == 1 and orjson.loads(snaps[0]) == snapshots[symbol]
        assert [x for x in written_books if b"lastUpdateId" not in x] == [f for f in served if b"depthUpdate" in f]
    assert sum("/fapi/v1/depth" in p for p in server.rest_requests) == 4
    run_cfg = tmp_path / "run.toml"  # the contract terms of these 2021 symbols: Binance's exchangeInfo of that day
    run_cfg.write_text(f'instruments_files = ["{(DATA / "binance" / "fapi-v1-exchangeInfo-2021-07-22.json").as_posix()}"]\n')
    assert main(["run", "--vault", str(vault), "--quiet", "--config", str(run_cfg)]) == 0
    for label in labels:
        quality = vault / "derived" / "quality" / label / "books.jsonl"
        events_ = [orjson.loads(x)["event"] for x in lines_of(quality)] if quality.exists() else []
        assert not events_, (label, events_)  # no sequence gap, nothing rejected
        buckets = [orjson.loads(x) for p in (vault / "derived" / "buckets" / label).glob("*.jsonl") for x in lines_of(p)]
        assert buckets and all(b["valid"] for b in buckets)  # the book synchronised on the recorded snapshot


def test_binance_reconnect_fetches_the_missed_aggtrades(tmp_path: Path) -> None:
    t0 = int(time.time() * 1000) - 30_000
    trades = [{"e": "aggTrade", "E": t0 + 40 * k + 3, "a": 5000 + k, "s": "BTCUSDT", "p": f"{95000 + k % 9}.5",
               "q": "0.010", "f": 9000 + k, "l": 9000 + k, "T": t0 + 40 * k, "m": k % 2 == 0} for k in range(500)]
    frames = [orjson.dumps({"stream": "btcusdt@aggTrade", "data": t}) for t in trades]
    server = ReplayServer(Timeline("binance", frames, [Fault(150, "drop")], trades=trades)).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server, "binance", ["binance/perps/BTCUSDT"]), server)
    written = [orjson.loads(x) for x in lines_of(next((vault / "raw" / "trades/binance/perps/BTCUSDT").glob("*.jsonl")))]
    assert [d.get("data", d)["a"] for d in written] == list(range(5000, 5500))
    backfilled = [d for d in written if "stream" not in d]  # written from the REST reply, as aggTrade events
    assert backfilled and all(d["e"] == "aggTrade" and d["s"] == "BTCUSDT" for d in backfilled)


def test_okx_real_trades_and_books_frames(tmp_path: Path) -> None:
    """OKX's real 2022 pushes (trades and books of three instruments), replayed: each instrument's lines are
    the frames served for it, byte for byte, in order."""
    frames = lines_of(DATA / "okx" / "ws-trades-2022-05-13.jsonl") if (DATA / "okx" / "ws-trades-2022-05-13.jsonl").exists() \
        else lines_of(SHARED / "okx" / "ws-trades-2022-05-13.jsonl")
    books = lines_of(SHARED / "okx" / "ws-books-2022-05-13.jsonl")
    timeline = sorted(frames + books, key=lambda f: int(orjson.loads(f)["data"][0]["ts"]))
    server = ReplayServer(Timeline("okx", timeline)).start()
    vault = tmp_path / "v"
    insts = {"BTC-USDT": "okx/spot/BTC-USDT", "UNI-USD-SWAP": "okx/perps/UNI-USD-SWAP",
             "BTC-USD-220527": "okx/futures/BTC-USD-220527"}
    record(vault, config(tmp_path, server, "okx", list(insts.values()), '["trades", "books"]'), server)
    for inst, label in insts.items():
        for kind, source in (("trades", frames), ("books", books)):
            served = [f for f in source if orjson.loads(f)["arg"]["instId"] == inst]
            written = lines_of(next((vault / "raw" / kind / label).glob("*.jsonl")))
            assert written == served, (label, kind)


def test_bybit_trades_repeats_dropped_and_a_reconnect_logged_unfilled(tmp_path: Path) -> None:
    real = lines_of(DATA / "bybit" / "ws-publicTrade-2023-04-05.jsonl")
    t0 = int(time.time() * 1000) - 10_000
    frames = []
    for k in range(300):
        data = [{"T": t0 + 30 * k, "s": "BTCUSDT", "S": "Buy" if k % 2 else "Sell", "v": "0.010", "p": "95000.10",
                 "L": "PlusTick", "i": f"id-{k}", "BT": False}]
        frames.append(orjson.dumps({"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": t0 + 30 * k + 2,
                                    "data": data}))
    frames.insert(50, frames[49])  # a repeated push
    frames.insert(10, next(f for f in real if b"BTCUSD" in f and b"BTCUSDT" not in f))  # BTCUSD, not recorded
    server = ReplayServer(Timeline("bybit", frames, [Fault(200, "drop")])).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server, "bybit", ["bybit/perps/BTCUSDT"]), server)
    written = lines_of(next((vault / "raw" / "trades/bybit/perps/BTCUSDT").glob("*.jsonl")))
    ids = [d["i"] for x in written for d in orjson.loads(x)["data"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=lambda i: int(i[3:]))
    assert "id-49" in ids and "id-0" in ids
    assert any(e["event"] == "unfilled" for e in events(vault, "bybit/perps/BTCUSDT"))


def test_okx_derivs_channels_and_the_liquidation_feed_folder(tmp_path: Path) -> None:
    """Real funding-rate, open-interest and liquidation-orders pushes: each instrument's to its own derivs
    folder; the liquidation feed of the instrument type to the folder [derivs] liquidations_from names."""
    folder = DATA / "derivs" / "okx"
    funding, oi, liqs = (lines_of(folder / f"ws-{n}.jsonl") for n in ("funding-rate", "open-interest", "liquidation-orders"))
    server = ReplayServer(Timeline("okx", funding + oi + liqs)).start()
    vault = tmp_path / "v"
    labels = ["okx/perps/WNCG-USDT-SWAP", "okx/perps/SOS-USDT-SWAP", "okx/futures/FIL-USDT-220325"]
    cfg = config(tmp_path, server, "okx", labels, '["derivs"]')
    cfg.write_text('[derivs]\nliquidations_from = ["okx/perps/SOS-USDT-SWAP"]\n' + cfg.read_text())
    record(vault, cfg, server)
    by_label = {label: [x for p in (vault / "raw" / "derivs" / label).glob("*.jsonl") for x in lines_of(p)]
                for label in labels}
    assert by_label["okx/perps/WNCG-USDT-SWAP"] == [f for f in funding + oi if b"WNCG-USDT-SWAP" in f]
    assert by_label["okx/futures/FIL-USDT-220325"] == [f for f in oi if b"FIL-USDT-220325" in f]
    sos = by_label["okx/perps/SOS-USDT-SWAP"]
    assert [f for f in sos if b"liquidation-orders" in f] == liqs and [f for f in sos if b"funding-rate" in f]


def test_bybit_real_orderbook_pushes(tmp_path: Path) -> None:
    frames = lines_of(DATA / "bybit" / "ws-orderbook500-XRPUSDT-linear-2024-12-01.jsonl")
    # the replay server plays them as a linear stream would; the recorder subscribes to orderbook.50, the file
    # is depth 500: the topic is the venue's to choose, the lines are written as they come
    server = ReplayServer(Timeline("bybit", frames)).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server, "bybit", ["bybit/perps/XRPUSDT"], '["books"]'), server)
    written = [x for p in (vault / "raw" / "books/bybit/perps/XRPUSDT").glob("*.jsonl") for x in lines_of(p)]
    assert written == frames


def test_a_books_sequence_gap_is_logged_and_a_new_snapshot_asked_for(tmp_path: Path) -> None:
    """OKX books pushes with seqId/prevSeqId; the server loses one: the recorder logs the gap and resubscribes
    the instrument's books (OKX then sends a snapshot, from which the book is whole again)."""
    from bench.generate_books import book_lines

    t0 = int(time.time() * 1000) - 20_000
    frames = [line.rstrip(b"\n") for _, line in book_lines(INST, t0, minutes=0.5, interval_ms=100, levels=40)]
    server = ReplayServer(Timeline("okx", frames, [Fault(120, "skip", 1)])).start()
    vault = tmp_path / "v"
    record(vault, config(tmp_path, server, channels='["books"]'), server)
    written = lines_of(next((vault / "raw" / "books" / LABEL).glob("*.jsonl")))
    assert written == [f for k, f in enumerate(frames) if k != 120]  # every push served, as served
    gaps = [e for e in events(vault) if e["event"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["channel"] == "books" and "prevSeqId" in gaps[0]["reason"]
    asked = [orjson.loads(m) for _, m in server.received if m.startswith("{")]
    assert [a["op"] for a in asked] == ["subscribe", "unsubscribe", "subscribe"]
    assert asked[-1]["args"] == [{"channel": "books", "instId": INST}]
