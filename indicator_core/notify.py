"""Signal delivery (SPEC section 12): committed records handed to notifiers.

A notifier (``[notify.NAME]`` in the config file) reads the outputs of the
signal streams it names and hands each record to standard output, to a
command (the JSON on its standard input), or to an HTTP POST.  Which outputs
are signal streams is declared by their indicators
(:class:`indicator_core.Signal` in ``Indicator.signals``): the built-in ones
are ``confluence`` (``derived/confluence/.../signals.jsonl``) and ``whales``
(``derived/whales/.../whales.jsonl``); a plugin's indicator declares its own
the same way.  The rules:

* **Only committed records.**  The committed length of an output is the one
  its producer's state file records (``outputs``); a follower hands it over
  in memory at each commit.  Bytes past it may still be cut back by the
  next run and are never delivered.
* **In order, at least once.**  Each notifier keeps, per instrument and
  stream, the byte offset up to which it has delivered, in
  ``state/notify/{NAME}/{exchange}/{market}/{INST_ID}.state.json``.  That
  file is replaced atomically *after* a record was delivered, so a process
  killed between the delivery and the write delivers that record once more,
  with the same ``signal_id``; it never skips one.
* **A failure never blocks the indicators.**  A failed delivery is retried
  with a growing pause (0.25 s doubling up to ``retry_max_seconds``); the
  records after it wait (order), other notifiers go on.  ``indicators run``
  delivers after its pass, retrying for at most ``wait_seconds``, and leaves
  the rest to the next run or to ``indicators notify``; ``run --follow``
  delivers in a background thread.
* **A new notifier starts at the end.**  Records already written when a
  notifier (or a stream of it) first appears are history and are not
  delivered, unless ``replay_history = true``.
* **A rebuilt output** (``indicators reset`` of its producer) is noticed
  because the record before the saved offset is no longer the one delivered
  last; delivery then goes on after that record if the rebuilt output holds
  it, else after the records no later than its time.

Each delivery is the record's JSON object with ``inst_id`` (when the record
has none), ``stream`` and ``signal_id`` added, the id as the stream declares it:
``{inst_id}|{timestamp_utc}|{level}`` for confluence, ``{inst_id}|{trade_id}``
for whales.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

import orjson

from .config import Config, NotifierConfig
from .errors import IndicatorError, StateError
from .signals import SignalStream, check_streams, installed_streams, signal_streams  # noqa: F401 (the API here)
from .storage import InstrumentKey, read_state, state_path, write_state

FIRST_PAUSE = 0.25
READ_BYTES = 1 << 20

Lengths = dict[str, dict[str, int]]  # indicator -> output -> committed length


def envelope(stream: SignalStream, inst_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """What a notifier receives: the record, then ``inst_id`` (if absent), ``stream`` and ``signal_id``."""
    out = dict(record)
    out.setdefault("inst_id", inst_id)
    out["stream"] = stream.name
    out["signal_id"] = stream.signal_id(inst_id, record)
    return out


class DeliveryError(Exception):
    """One delivery attempt failed; it will be retried."""


# --- senders ------------------------------------------------------------------------------------
def make_sender(cfg: NotifierConfig, stdout: Callable[[], TextIO] = lambda: sys.stdout) -> Callable[[bytes, str], None]:
    """``send(json_bytes, signal_id)``: deliver one record or raise :class:`DeliveryError`."""
    if cfg.kind == "stdout":
        def send_stdout(data: bytes, sid: str) -> None:  # noqa: ARG001
            try:
                out = stdout()
                out.write(data.decode() + "\n")
                out.flush()
            except (OSError, ValueError) as exc:
                raise DeliveryError(f"standard output: {exc}") from exc
        return send_stdout

    if cfg.kind == "command":
        def send_command(data: bytes, sid: str) -> None:  # noqa: ARG001
            try:
                done = subprocess.run(cfg.command, input=data + b"\n", capture_output=True, timeout=cfg.timeout_seconds)
            except FileNotFoundError as exc:
                raise DeliveryError(f"command {cfg.command[0]!r} not found") from exc
            except subprocess.TimeoutExpired as exc:
                raise DeliveryError(f"command did not finish within {cfg.timeout_seconds} s") from exc
            except OSError as exc:
                raise DeliveryError(f"command {cfg.command[0]!r}: {exc}") from exc
            if done.returncode != 0:
                err = done.stderr.decode(errors="replace").strip()[-300:]
                raise DeliveryError(f"command exited with status {done.returncode}" + (f": {err}" if err else ""))
        return send_command

    def send_webhook(data: bytes, sid: str) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "indicator-core", **cfg.headers, "X-Signal-Id": sid}
        req = urllib.request.Request(cfg.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout_seconds) as resp:
                resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"POST {cfg.url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"POST {cfg.url}: {reason}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(f"POST {cfg.url}: HTTP {status}")
    return send_webhook


def describe(cfg: NotifierConfig) -> str:
    if cfg.kind == "webhook":
        return f"POST {cfg.url}"
    if cfg.kind == "command":
        return " ".join(cfg.command or [])
    return "standard output"


def active(cfg: Config) -> dict[str, NotifierConfig]:
    return {name: n for name, n in cfg.notify.items() if n.enabled}


# --- positions ----------------------------------------------------------------------------------
def notify_dir(vault: Path, name: str) -> Path:
    return vault / "state" / "notify" / name


def position_path(vault: Path, name: str, key: InstrumentKey) -> Path:
    return notify_dir(vault, name) / key.exchange / key.market / f"{key.inst_id}.state.json"


@dataclass
class Position:
    offset: int = 0
    delivered: int = 0
    last_id: str | None = None
    last_len: int = 0
    last_sha: str | None = None
    last_time: str | None = None

    def to_state(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Notifier:
    name: str
    cfg: NotifierConfig
    send: Callable[[bytes, str], None]
    pause: float = 0.0  # current retry pause; 0 after a success
    next_try: float = 0.0  # monotonic time of the next attempt
    last_error: str | None = None
    given_up: bool = False
    delivered: int = 0  # in this process


@dataclass
class Summary:
    delivered: int = 0
    pending: dict[str, int] = field(default_factory=dict)  # notifier -> records left
    errors: dict[str, str] = field(default_factory=dict)


class Deliverer:
    """Delivers committed records of a vault to its notifiers; see the module docstring.

    ``read_states`` (the default): committed lengths come from the producers'
    state files, to be used while this process holds the vault lock and no
    pass runs.  A follower passes ``read_states=False`` and feeds the
    lengths of each commit to :meth:`committed` instead (the state files are
    being replaced by the pass meanwhile).
    """

    def __init__(self, vault: Path, notifiers: dict[str, NotifierConfig], streams: dict[str, SignalStream], *,
                 log: TextIO | None = None, stdout: Callable[[], TextIO] = lambda: sys.stdout) -> None:
        self.vault = vault
        self.streams = streams  # the declared signal streams (signal_streams), by name
        self.notifiers = {n: Notifier(n, c, make_sender(c, stdout)) for n, c in notifiers.items()}
        self.log = log if log is not None else sys.stderr
        self.lengths: dict[tuple[str, InstrumentKey], dict[str, int]] = {}  # (indicator, key) -> outputs
        self.positions: dict[tuple[str, InstrumentKey], dict[str, Position]] = {}
        self.initialized: dict[str, list[str]] = {}
        self.lock = threading.Lock()  # guards self.lengths (a follower's commits arrive from its thread)
        self.read_states = True

    # --- what is committed -------------------------------------------------------------------
    def load_lengths(self) -> None:
        """Read every producer's committed lengths from its state file (no pass may be running)."""
        for indicator in {self.streams[s].folder for n in self.notifiers.values() for s in n.cfg.streams}:
            root = self.vault / "state" / indicator
            for path in sorted(root.glob("*/*/*.state.json")):
                exchange, market = path.parts[-3:-1]
                key = InstrumentKey(exchange, market, path.name.removesuffix(".state.json"))
                self._read_lengths(indicator, key)

    def _read_lengths(self, indicator: str, key: InstrumentKey) -> dict[str, int]:
        state = read_state(state_path(self.vault, indicator, key))
        lengths = {s: int(n) for s, n in (state or {}).get("outputs", {}).items()}
        with self.lock:
            self.lengths[(indicator, key)] = lengths
        return lengths

    def committed(self, key: InstrumentKey, lengths: Lengths) -> None:
        """A commit of ``key`` (from the engine): the committed length of each indicator's outputs."""
        with self.lock:
            for indicator, outs in lengths.items():
                self.lengths[(indicator, key)] = dict(outs)

    def _committed(self, stream: str, key: InstrumentKey) -> int:
        indicator, output = self.streams[stream].folder, self.streams[stream].output
        with self.lock:
            lengths = self.lengths.get((indicator, key))
        if lengths is None:
            lengths = self._read_lengths(indicator, key) if self.read_states else {}
        return lengths.get(output, 0)

    def keys(self, stream: str) -> list[InstrumentKey]:
        indicator = self.streams[stream].folder
        with self.lock:
            return sorted({k for (i, k) in self.lengths if i == indicator}, key=lambda k: k.label)

    # --- positions ---------------------------------------------------------------------------
    def _streams_initialized(self, name: str) -> list[str]:
        if name not in self.initialized:
            state = read_state(notify_dir(self.vault, name) / "notifier.state.json")
            self.initialized[name] = list((state or {}).get("streams", []))
        return self.initialized[name]

    def _positions(self, name: str, key: InstrumentKey) -> dict[str, Position]:
        got = self.positions.get((name, key))
        if got is None:
            state = read_state(position_path(self.vault, name, key)) or {}
            try:
                got = {s: Position(**p) for s, p in state.get("streams", {}).items()}
            except TypeError as exc:
                raise StateError(f"{position_path(self.vault, name, key)} is damaged ({exc})") from exc
            self.positions[(name, key)] = got
        return got

    def position(self, name: str, key: InstrumentKey, stream: str) -> Position:
        """Where notifier ``name`` stands in ``stream`` of ``key`` (a new stream starts at its committed end)."""
        positions = self._positions(name, key)
        pos = positions.get(stream)
        if pos is None:
            n = self.notifiers[name]
            start = stream in self._streams_initialized(name) or n.cfg.replay_history
            pos = Position(offset=0 if start else self._committed(stream, key))
            positions[stream] = pos
        return pos

    def _save(self, name: str, key: InstrumentKey) -> None:
        write_state(position_path(self.vault, name, key), {
            "notifier": name, "inst_id": key.inst_id,
            "streams": {s: p.to_state() for s, p in sorted(self._positions(name, key).items())},
        })

    def prepare(self) -> None:
        """Fix where new notifiers and new streams start (before the pass that may add records)."""
        self.load_lengths()
        for name, n in self.notifiers.items():
            done = self._streams_initialized(name)
            new = [s for s in n.cfg.streams if s not in done]
            if not new:
                continue
            for stream in new:
                for key in self.keys(stream):
                    positions = self._positions(name, key)
                    if stream not in positions:
                        self.position(name, key, stream)
                        self._save(name, key)
            self.initialized[name] = done + new
            write_state(notify_dir(self.vault, name) / "notifier.state.json",
                        {"notifier": name, "kind": n.cfg.kind, "streams": self.initialized[name]})

    # --- delivering ----------------------------------------------------------------------------
    def _resync(self, name: str, key: InstrumentKey, stream: str, pos: Position, committed: int) -> None:
        """The output was rebuilt: continue after the record delivered last (by its bytes, else by its time)."""
        path = self.streams[stream].path(self.vault, key)
        offset, after_time = 0, 0
        time_field = self.streams[stream].time_field
        for start, line in _lines(path, 0, committed):
            end = start + len(line)
            if pos.last_sha is not None and hashlib.sha256(line).hexdigest() == pos.last_sha:
                offset = end
                break
            if pos.last_time is not None and str(orjson.loads(line).get(time_field)) <= pos.last_time:
                after_time = end
        else:
            offset = after_time
        print(f"notify {name}: {self.streams[stream].output}.jsonl of {key.label} was rebuilt since the last delivery; "
              f"continuing after {pos.last_id} (byte {offset})", file=self.log, flush=True)
        pos.offset = offset

    def _check(self, name: str, key: InstrumentKey, stream: str, pos: Position, committed: int) -> None:
        if pos.offset == 0 or pos.last_sha is None:
            if pos.offset > committed:
                pos.offset = committed
            return
        path = self.streams[stream].path(self.vault, key)
        same = False
        if pos.offset <= committed:
            try:
                with open(path, "rb") as f:
                    f.seek(pos.offset - pos.last_len)
                    same = hashlib.sha256(f.read(pos.last_len)).hexdigest() == pos.last_sha
            except OSError:
                same = False
        if not same:
            self._resync(name, key, stream, pos, committed)

    def _deliver_route(self, n: Notifier, key: InstrumentKey, stream: str) -> bool:
        """Deliver what is committed and not yet delivered; False after a failed attempt."""
        committed = self._committed(stream, key)
        pos = self.position(n.name, key, stream)
        self._check(n.name, key, stream, pos, committed)
        if pos.offset >= committed:
            return True
        path = self.streams[stream].path(self.vault, key)
        for start, line in _lines(path, pos.offset, committed):
            record = orjson.loads(line)
            body = envelope(self.streams[stream], key.inst_id, record)
            try:
                n.send(orjson.dumps(body), body["signal_id"])
            except DeliveryError as exc:
                n.last_error = str(exc)
                return False
            pos.offset = start + len(line)
            pos.delivered += 1
            pos.last_id = body["signal_id"]
            pos.last_len = len(line)
            pos.last_sha = hashlib.sha256(line).hexdigest()
            pos.last_time = str(record.get(self.streams[stream].time_field))
            n.delivered += 1
            try:
                self._save(n.name, key)
            except OSError as exc:  # kept in memory; written with the next delivery
                print(f"notify {n.name}: cannot save the delivery position ({exc}); it is kept in memory",
                      file=self.log, flush=True)
        return True

    def pending(self, name: str) -> int:
        """Records committed and not yet delivered by ``name``, over every instrument and stream."""
        total = 0
        for stream in self.notifiers[name].cfg.streams:
            for key in self.keys(stream):
                committed = self._committed(stream, key)
                pos = self.position(name, key, stream)
                if pos.offset < committed:
                    path = self.streams[stream].path(self.vault, key)
                    total += sum(1 for _ in _lines(path, pos.offset, committed))
        return total

    def step(self, now: float | None = None) -> bool:
        """One round: each notifier not pausing delivers all it can.  True when nothing is left to retry."""
        now = time.monotonic() if now is None else now
        idle = True
        for n in self.notifiers.values():
            if n.given_up:
                continue
            if n.next_try > now:
                idle = False
                continue
            ok = True
            for stream in n.cfg.streams:
                for key in self.keys(stream):
                    if not self._deliver_route(n, key, stream):
                        ok = False
                        break
                if not ok:
                    break
            if ok:
                if n.pause:
                    print(f"notify {n.name}: delivering again", file=self.log, flush=True)
                n.pause, n.last_error = 0.0, None
            else:
                n.pause = min(n.cfg.retry_max_seconds, n.pause * 2 if n.pause else FIRST_PAUSE)
                n.next_try = time.monotonic() + n.pause
                print(f"notify {n.name}: {n.last_error}; retrying in {n.pause:g} s", file=self.log, flush=True)
                idle = False
        return idle

    def next_wake(self) -> float | None:
        times = [n.next_try for n in self.notifiers.values() if n.pause and not n.given_up]
        return min(times) if times else None

    def drain(self, wait_seconds: float | None = None) -> Summary:
        """Deliver everything committed, retrying each notifier for at most its ``wait_seconds``."""
        if self.read_states:
            self.load_lengths()
        start = time.monotonic()
        while True:
            if self.step():
                break
            now = time.monotonic()
            for n in self.notifiers.values():
                limit = n.cfg.wait_seconds if wait_seconds is None else wait_seconds
                if n.pause and not n.given_up and n.next_try > start + limit:
                    n.given_up = True
            wake = self.next_wake()
            if wake is None:
                break
            time.sleep(max(0.0, wake - now))
        summary = Summary()
        for name, n in self.notifiers.items():
            summary.delivered += n.delivered
            left = self.pending(name)
            if left:
                summary.pending[name] = left
                if n.last_error:
                    summary.errors[name] = n.last_error
        return summary


def _lines(path: Path, start: int, end: int):
    """``(offset, line)`` for each whole line of ``path`` between ``start`` and ``end`` (a committed length)."""
    if end <= start:
        return
    with open(path, "rb") as f:
        f.seek(start)
        offset, rest = start, b""
        while offset + len(rest) < end:
            chunk = f.read(min(READ_BYTES, end - offset - len(rest)))
            if not chunk:
                raise StateError(f"{path} is shorter than its committed length {end}")
            buf = rest + chunk
            cut = buf.rfind(b"\n") + 1
            for line in buf[:cut].splitlines(keepends=True):
                yield offset, line
                offset += len(line)
            rest = buf[cut:]


class DeliveryThread(threading.Thread):
    """Follow mode: delivers in the background after each commit, retries on its own clock."""

    def __init__(self, deliverer: Deliverer) -> None:
        super().__init__(name="indicator-core-notify", daemon=True)
        self.deliverer = deliverer
        deliverer.read_states = False
        self.wake = threading.Event()
        self.stopping = False
        self.error: BaseException | None = None

    def committed(self, key: InstrumentKey, lengths: Lengths) -> None:
        self.deliverer.committed(key, lengths)
        self.wake.set()

    def run(self) -> None:
        try:
            while not self.stopping:
                self.deliverer.step()
                wake = self.deliverer.next_wake()
                self.wake.wait(None if wake is None else max(0.0, wake - time.monotonic()))
                self.wake.clear()
        except (IndicatorError, OSError) as exc:  # reported by stop(); the indicators go on
            self.error = exc
            print(f"notify: delivery stopped: {exc}", file=self.deliverer.log, flush=True)

    def stop(self, wait_seconds: float) -> Summary:
        """Stop the thread, then deliver what the last commit added, for at most ``wait_seconds``."""
        self.stopping = True
        self.wake.set()
        self.join()
        if self.error is not None:
            return Summary()
        return self.deliverer.drain(wait_seconds)


def report(summary: Summary, log: TextIO) -> None:
    for name, left in summary.pending.items():
        why = f" (last error: {summary.errors[name]})" if name in summary.errors else ""
        print(f"notify {name}: {left} records not delivered yet{why}; the next run or `indicators notify` "
              "delivers them", file=log, flush=True)


def status_rows(vault: Path, cfg: Config, streams: dict[str, SignalStream]) -> list[dict[str, Any]]:
    """Per notifier, instrument and stream: bytes delivered and committed, records pending."""
    d = Deliverer(vault, cfg.notify, streams)
    d.load_lengths()
    rows = []
    for name, n in d.notifiers.items():
        for stream in n.cfg.streams:
            for key in d.keys(stream):
                committed = d._committed(stream, key)
                pos = d.position(name, key, stream)
                path = streams[stream].path(vault, key)
                pending = sum(1 for _ in _lines(path, pos.offset, committed)) if pos.offset < committed else 0
                rows.append({
                    "notifier": name, "kind": n.cfg.kind, "enabled": n.cfg.enabled, "stream": stream,
                    "instrument": key.label, "delivered": pos.delivered, "delivered_bytes": pos.offset,
                    "committed_bytes": committed, "pending": pending, "last_signal_id": pos.last_id,
                })
    return rows
