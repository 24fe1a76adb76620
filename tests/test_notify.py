"""Signal delivery (SPEC section 12): committed records reach stdout, a command or a local HTTP server,
in order, at least once, with their signal id, across failures, restarts and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from indicator_core.cli import main
from tests.test_whales_poor_levels import D0, vault_with
from tests.vaults import REPO, read_jsonl, run, write_config

BTC = "BTC-USDT-SWAP"


def whale_trades(n: int, first_second: int = 0) -> list[tuple[int, str, str, str]]:
    """``n`` trades of 120000 USD or more (one every 20 s), each a whale."""
    return [(D0 + (first_second + 20 * k) * 1000, "60000", str(200 + k), "buy" if k % 2 else "sell") for k in range(n)]


def whale_ids(vault: Path) -> list[str]:
    path = vault / "derived/whales/okx/perps" / BTC / "whales.jsonl"
    return [f"{BTC}|{r['trade_id']}" for r in read_jsonl(path)]


class Receiver:
    """A real HTTP server on 127.0.0.1 that answers with the given statuses in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None, port: int = 0) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.bodies.append(json.loads(data))
                    outer.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/signal"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        return [b["signal_id"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int] | None = None, port: int = 0) -> Receiver:
        r = Receiver(statuses, port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def webhook_config(path: Path, url: str, extra: str = "", streams: str = '["whales"]', wait: float = 20) -> Path:
    return write_config(path, f'[notify.bot]\nkind = "webhook"\nurl = "{url}"\nstreams = {streams}\n'
                              f"retry_max_seconds = 0.2\nwait_seconds = {wait}\n{extra}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_that_fails_then_recovers_gets_every_record_in_order(tmp_path: Path, receiver) -> None:
    srv = receiver([500, 500, 503])  # the first three attempts fail
    vault = vault_with(tmp_path, whale_trades(6))
    cfg = webhook_config(tmp_path / "c.toml", srv.url)
    assert run(vault, cfg) == 0
    assert srv.attempts == 9
    assert srv.ids() == whale_ids(vault) and len(srv.ids()) == 6
    first = srv.bodies[0]
    assert first == {"ts_utc": "2024-08-08T00:00:00.000Z", "trade_id": "1000", "side": "sell", "px": "60000",
                     "sz": "200", "notional": "120000", "base": "2", "inst_id": BTC, "stream": "whales",
                     "signal_id": f"{BTC}|1000"}
    assert srv.headers[0]["X-Signal-Id"] == f"{BTC}|1000"
    # more trades, another run: only the new records
    vault_with(tmp_path, whale_trades(6) + whale_trades(2, first_second=200))
    assert run(vault, cfg) == 0
    assert srv.ids() == whale_ids(vault) and len(srv.ids()) == 8


def test_receiver_down_never_blocks_the_run_and_notify_delivers_later(tmp_path: Path, receiver, capsys) -> None:
    port = free_port()
    vault = vault_with(tmp_path, whale_trades(4))
    cfg = webhook_config(tmp_path / "c.toml", f"http://127.0.0.1:{port}/signal", wait=0.5)
    assert run(vault, cfg) == 0  # the indicators are done; delivery waits for the receiver
    err = capsys.readouterr().err
    assert "4 records not delivered yet" in err and "indicators notify" in err
    assert (vault / "derived/whales/okx/perps" / BTC / "whales.jsonl").exists()
    assert main(["status", "--vault", str(vault), "--config", str(cfg), "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["indicator"] == "notify"]
    assert [(r["notifier"], r["stream"], r["pending"], r["delivered"]) for r in rows] == [("bot", "whales", 4, 0)]
    assert main(["notify", "--vault", str(vault), "--config", str(cfg), "--wait", "0.3"]) == 1  # still down
    srv = receiver(port=port)
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert srv.ids() == whale_ids(vault) and len(srv.ids()) == 4
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert len(srv.ids()) == 4  # nothing twice without a reason
    capsys.readouterr()
    assert main(["status", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert f"{BTC}|1003" in capsys.readouterr().out


KILLER = '''
import os, signal, sys
from pathlib import Path
data = sys.stdin.buffer.read()
with open(sys.argv[1], "ab") as f:
    f.write(data)
marker = Path(sys.argv[2])
if marker.exists():  # the record is delivered; now kill the run before it can save its position
    marker.unlink()
    os.kill(os.getppid(), signal.SIGKILL)
'''


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_after_a_delivery_delivers_it_again_with_the_same_id(tmp_path: Path) -> None:
    script = tmp_path / "receive.py"
    script.write_text(KILLER)
    got, marker = tmp_path / "got.jsonl", tmp_path / "kill-once"
    marker.touch()
    cfg = write_config(tmp_path / "c.toml", f'[notify.bot]\nkind = "command"\nstreams = ["whales"]\n'
                                            f'command = {json.dumps([sys.executable, str(script), str(got), str(marker)])}\n')
    vault = vault_with(tmp_path, whale_trades(5))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config", str(cfg),
                           "--quiet"], env=env, capture_output=True)
    assert done.returncode == -signal.SIGKILL
    ids = [json.loads(x)["signal_id"] for x in got.read_text().splitlines()]
    assert ids == [f"{BTC}|1000"]  # delivered, then killed before the position was written
    assert run(vault, cfg) == 0
    ids = [json.loads(x)["signal_id"] for x in got.read_text().splitlines()]
    assert ids == [f"{BTC}|1000"] + whale_ids(vault)  # once more with the same id, then the rest; none skipped
    assert run(vault, cfg) == 0
    assert len(got.read_text().splitlines()) == 6


def test_command_that_fails_is_retried_and_stdout_notifier(tmp_path: Path, capsys) -> None:
    got, flag = tmp_path / "got.jsonl", tmp_path / "fail-once"
    flag.touch()
    script = tmp_path / "flaky.py"
    script.write_text("import sys, pathlib\nflag = pathlib.Path(sys.argv[2])\n"
                      "if flag.exists():\n    flag.unlink()\n    sys.exit('busy')\n"
                      "open(sys.argv[1], 'ab').write(sys.stdin.buffer.read())\n")
    cfg = write_config(tmp_path / "c.toml", f'[notify.cmd]\nkind = "command"\nstreams = ["whales"]\n'
                                            f'command = {json.dumps([sys.executable, str(script), str(got), str(flag)])}\n'
                                            'retry_max_seconds = 0.1\n'
                                            '[notify.screen]\nkind = "stdout"\nstreams = ["whales"]\n')
    vault = vault_with(tmp_path, whale_trades(3))
    assert main(["run", "--vault", str(vault), "--config", str(cfg), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "command exited with status 1: busy" in err
    assert [json.loads(x)["signal_id"] for x in got.read_text().splitlines()] == whale_ids(vault)
    assert [json.loads(x)["signal_id"] for x in out.splitlines()] == whale_ids(vault)
    assert main(["plugins", "--config", str(cfg)]) == 0
    listed = capsys.readouterr().out
    assert "screen" in listed and "stdout" in listed and "cmd" in listed and "whales" in listed


def confluence_vault(tmp_path: Path, records: list[dict], committed: int) -> tuple[Path, Path]:
    """A signals.jsonl and a producer state file laid out as the engine writes them, ``committed`` records long."""
    vault = tmp_path / "vault"
    out = vault / "derived/confluence/okx/perps" / BTC / "signals.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records]
    out.write_bytes(b"".join(lines))
    state = vault / "state/confluence/okx/perps" / f"{BTC}.state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"format": 1, "indicator": "confluence", "inst_id": BTC,
                                 "outputs": {"signals": sum(len(x) for x in lines[:committed])}}))
    return vault, state


def confluence_record(minute: str, level: str) -> dict:
    return {"timestamp_utc": f"2024-08-08T{minute}:00Z", "inst_id": BTC, "direction": "short", "level": level,
            "level_side": "upper", "score": 3, "conviction": "normal"}


def test_confluence_records_only_up_to_the_committed_length(tmp_path: Path, receiver) -> None:
    srv = receiver()
    cfg = webhook_config(tmp_path / "c.toml", srv.url, streams='["confluence"]')
    vault = tmp_path / "vault"
    (vault / "state").mkdir(parents=True)
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0  # the notifier exists before any signal
    records = [confluence_record("10:00", "60100"), confluence_record("10:00", "60250.5"), confluence_record("10:07", "60100")]
    vault, state = confluence_vault(tmp_path, records, committed=2)
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert srv.ids() == [f"{BTC}|2024-08-08T10:00:00Z|60100", f"{BTC}|2024-08-08T10:00:00Z|60250.5"]
    assert srv.bodies[1] == {**records[1], "stream": "confluence", "signal_id": f"{BTC}|2024-08-08T10:00:00Z|60250.5"}
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert len(srv.ids()) == 2  # the third line is not committed: not delivered
    confluence_vault(tmp_path, records, committed=3)
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert srv.ids()[2:] == [f"{BTC}|2024-08-08T10:07:00Z|60100"]


def test_a_new_notifier_starts_at_the_end_unless_it_replays_history(tmp_path: Path, receiver) -> None:
    vault, _ = confluence_vault(tmp_path, [confluence_record("10:00", "1"), confluence_record("10:01", "2")], committed=2)
    new = receiver()
    assert main(["notify", "--vault", str(vault), "--config", str(webhook_config(tmp_path / "a.toml", new.url, streams='["confluence"]'))]) == 0
    assert new.ids() == []
    confluence_vault(tmp_path, [confluence_record("10:00", "1"), confluence_record("10:01", "2"), confluence_record("10:02", "3")], committed=3)
    assert main(["notify", "--vault", str(vault), "--config", str(webhook_config(tmp_path / "a.toml", new.url, streams='["confluence"]'))]) == 0
    assert new.ids() == [f"{BTC}|2024-08-08T10:02:00Z|3"]
    replay = receiver()
    cfg = write_config(tmp_path / "b.toml", f'[notify.all]\nkind = "webhook"\nurl = "{replay.url}"\nreplay_history = true\n')
    assert main(["notify", "--vault", str(vault), "--config", str(cfg)]) == 0
    assert len(replay.ids()) == 3


def test_a_rebuilt_output_is_not_delivered_again(tmp_path: Path, receiver) -> None:
    srv = receiver()
    vault = vault_with(tmp_path, whale_trades(4))
    cfg = webhook_config(tmp_path / "c.toml", srv.url)
    assert run(vault, cfg) == 0 and len(srv.ids()) == 4
    assert main(["reset", "--vault", str(vault), "--indicator", "all"]) == 0
    assert (vault / "state/notify/bot").is_dir()  # delivery positions are not an indicator's state
    vault_with(tmp_path, whale_trades(4) + whale_trades(1, first_second=300))
    assert run(vault, cfg) == 0
    assert srv.ids() == whale_ids(vault) and len(srv.ids()) == 5


@pytest.mark.parametrize("text,needle", [
    ('[notify.bot]\nkind = "webhok"\n', "notify.bot.kind: Input should be 'stdout', 'command' or 'webhook' (got 'webhok')"),
    ('[notify.bot]\nkind = "webhook"\n', 'notify.bot: Value error, kind = "webhook" needs url'),
    ('[notify.bot]\nkind = "webhook"\nurl = "ftp://x"\n', "notify.bot.url: Value error, url must start with http"),
    ('[notify.bot]\nkind = "command"\n', 'needs command = ["program"'),
    ('[notify.bot]\nkind = "stdout"\nstreams = ["poor_levels"]\n', "notify.bot.streams.0: Input should be 'confluence', 'liquidations' or 'whales'"),
    ('[notify.bot]\nkind = "stdout"\nevery = 1\n', "notify.bot.every: unknown key"),
    ('[notify."my bot"]\nkind = "stdout"\n', "notifier name 'my bot'"),
])
def test_bad_notifier_config_exits_2_naming_file_key_value(tmp_path: Path, capsys, text: str, needle: str) -> None:
    cfg = write_config(tmp_path / "c.toml", text)
    assert main(["plugins", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and needle in err


@pytest.mark.skipif(sys.platform == "win32", reason="stops the follower with SIGTERM")
def test_follow_mode_delivers_in_the_background(tmp_path: Path, receiver) -> None:
    srv = receiver([500])
    vault = vault_with(tmp_path, whale_trades(2))
    cfg = webhook_config(tmp_path / "c.toml", srv.url, "[run]\ncommit_seconds = 3600\n")  # commits for the signals
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "indicator_core", "run", "--vault", str(vault), "--config", str(cfg),
                             "--follow", "--poll", "0.05", "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(srv.ids()) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(srv.ids()) == 2
        vault_with(tmp_path, whale_trades(2) + whale_trades(3, first_second=100))  # appended while it follows
        while len(srv.ids()) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert srv.ids() == whale_ids(vault) and len(srv.ids()) == 5, err.decode()
    assert proc.returncode == 0, err.decode()


def test_readme_notifier_and_plugin_examples_are_valid(tmp_path: Path, capsys) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("[notify.my_bot]")
    notify_cfg = write_config(tmp_path / "n.toml", text[start:text.index("```", start)])
    start = text.index("[plugins.whales]")
    plugins_cfg = write_config(tmp_path / "p.toml", text[start:text.index("```", start)])
    assert main(["plugins", "--json", "--config", str(plugins_cfg)]) == 0
    capsys.readouterr()
    assert main(["plugins", "--json", "--config", str(notify_cfg)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r.get("notifier") == "my_bot" and r["streams"] == ["confluence", "whales"] for r in rows)
