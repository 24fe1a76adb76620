"""A commit's order on disk: every output (and a new output's folder entry) synced before any state names it,
and the fsyncs of a commit's files waiting on the disk together rather than one after another."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from indicator_core import storage
from tests.vaults import inst_dir, outputs, run, trade_line

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names fsynced files through /proc")

INST = "BTC-USDT-SWAP"
DAY = 1_732_406_400_000  # 2024-11-24T00:00:00Z


def _trades(vault: Path, minutes: int, day: str = "2024-11-24", start: int = DAY) -> None:
    first_id = 1000 + (start - DAY) // 1000
    lines = [trade_line(INST, first_id + i, f"{60000 + i % 7}.{i % 10}", f"0.{i % 9 + 1}", "buy" if i % 3 else "sell",
                        start + i * 20_000) for i in range(minutes * 3)]
    (inst_dir(vault, INST) / f"trades_{day}.jsonl").write_bytes(b"".join(lines))


class _Disk:
    """Records fsyncs and renames in order, each fsync held a while so that overlapping ones can be seen."""

    def __init__(self, vault: Path, hold: float) -> None:
        self.vault, self.hold = vault, hold
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.waiting = self.most_waiting = 0
        self._fsync, self._replace = os.fsync, os.replace

    def name(self, path: str) -> str:
        return Path(path).resolve().relative_to(self.vault.resolve()).as_posix()

    def fsync(self, fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        with self.lock:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            time.sleep(self.hold)
            self._fsync(fd)
        finally:
            with self.lock:
                self.waiting -= 1
                self.events.append(("fsync", self.name(path)))

    def replace(self, src, dst) -> None:
        self._replace(src, dst)
        with self.lock:
            self.events.append(("replace", self.name(dst)))


@pytest.fixture
def disk(tmp_path, monkeypatch):
    vault = tmp_path / "vault"
    vault.mkdir()
    d = _Disk(vault, hold=0.05)
    monkeypatch.setattr(os, "fsync", d.fsync)
    monkeypatch.setattr(os, "replace", d.replace)
    return d


def _check_order(events: list[tuple[str, str]], outputs_written: list[str]) -> None:
    """Each state is renamed into place only after every output and folder entry of the commit was synced."""
    first_replace = min(i for i, (what, _) in enumerate(events) if what == "replace")
    synced_before = {name for what, name in events[:first_replace] if what == "fsync"}
    for out in outputs_written:
        assert out in synced_before, (out, events)


def test_first_commit_syncs_outputs_and_their_folders_at_once_before_any_state(disk):
    vault = disk.vault
    _trades(vault, 30)
    assert run(vault) == 0
    written = sorted(outputs(vault))
    assert written, "the run wrote no output"
    new_files = [f"derived/{name}" for name in written]
    folders = sorted({str(Path(n).parent.as_posix()) for n in new_files})
    _check_order(disk.events, new_files + folders)
    states = [name for what, name in disk.events if what == "replace"]
    assert len(states) >= len({n.split("/")[1] for n in new_files}), states
    # a dozen files and folders synced, many of them waiting on the disk at the same time
    assert disk.most_waiting >= 4, disk.most_waiting


def test_later_commit_syncs_only_what_grew_and_keeps_the_order(disk):
    vault = disk.vault
    _trades(vault, 30)
    assert run(vault) == 0
    before = outputs(vault)
    _trades(vault, 30, day="2024-11-25", start=DAY + 86_400_000)
    disk.events.clear()
    disk.most_waiting = 0
    assert run(vault) == 0
    grown = [f"derived/{n}" for n, data in outputs(vault).items() if before.get(n) != data]
    assert grown
    _check_order(disk.events, grown)
    # a folder's entry is synced for the outputs this run created (the quality report's first record), no other
    created = {str(Path(f"derived/{n}").parent.as_posix()) for n in outputs(vault) if n not in before}
    synced_folders = {n for what, n in disk.events if what == "fsync" and (vault / n).is_dir()}
    assert synced_folders == created
    assert disk.most_waiting >= 4


def test_a_refused_state_write_still_counts_the_states_that_were_written(tmp_path, monkeypatch):
    """One state file the disk refuses: the run stops, and the next run continues from what each state says."""
    vault = tmp_path / "vault"
    _trades(vault, 30)
    real = storage.write_state_bytes
    refused = []

    def write(path: Path, data: bytes) -> None:
        if "vwap" in path.as_posix() and not refused:
            refused.append(path)
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(storage, "write_state_bytes", write)
    import indicator_core.runtime.consumer as engine

    monkeypatch.setattr(engine, "write_state_bytes", write)
    assert run(vault) == 1
    assert refused
    monkeypatch.undo()
    assert run(vault) == 0
    again = tmp_path / "again"
    _trades(again, 30)
    assert run(again) == 0
    assert outputs(vault) == outputs(again)


def test_the_sync_helpers_are_kept_from_commit_to_commit_and_a_forked_child_starts_its_own(tmp_path,
                                                                                           monkeypatch) -> None:
    """A pass commits often (a follower, a small commit_seconds): the threads that sync side by side are started
    once, not for each commit, and a child forked with them (a pool worker) starts threads of its own."""
    monkeypatch.setattr(storage, "_HELPERS", storage._Helpers())  # none started yet
    held = threading.Event()
    errors = storage.at_once([lambda: held.wait(0.01), lambda: 1 / 0, lambda: held.wait(0.01)])
    assert errors[0] is None and isinstance(errors[1], ZeroDivisionError) and errors[2] is None
    helpers = set(storage._HELPERS.threads)
    assert len(helpers) == 2 and all(t.is_alive() and t.daemon for t in helpers)
    for _ in range(50):  # fifty commits' worth: no thread started or ended
        before = threading.active_count()
        assert storage.at_once([lambda: None] * 3) == [None] * 3
        assert threading.active_count() == before
    assert set(storage._HELPERS.threads) == helpers
    calls = [lambda k=k: (tmp_path / f"f{k}").write_text(str(k)) for k in range(8)]  # more calls: more helpers
    assert storage.at_once(calls) == [None] * 8 and len(storage._HELPERS.threads) == storage.SYNC_THREADS - 1
    assert sorted(p.read_text() for p in tmp_path.glob("f*")) == [str(k) for k in range(8)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its parent's helpers are not here, so it must start its own or wait forever
        try:
            ok = storage.at_once([lambda: None] * 4) == [None] * 4 and len(storage._HELPERS.threads) == 3
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    try:
        deadline = time.monotonic() + 30
        got = b""
        while not got and time.monotonic() < deadline:
            got = os.read(read, 2)
        assert got == b"ok"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
