"""Reading the committed outputs of a vault, for ``indicators study`` and ``indicators chart``.

Only committed records are read: the length each indicator's state file records
for an output (``"outputs": {stream: bytes}``).  Bytes a running or killed run
appended after its last commit are not looked at, so a study or a chart made
while ``indicators run --follow`` is writing sees a consistent vault.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import orjson

from ..errors import ConfigError
from ..storage import InstrumentKey, derived_dir, read_state, state_path


def committed_bytes(vault: Path, indicator: str, key: InstrumentKey, stream: str) -> bytes | None:
    """The committed bytes of ``derived/{indicator}/.../{stream}.jsonl``; ``None`` when the indicator
    has no state for this instrument or does not have this output."""
    state = read_state(state_path(vault, indicator, key))
    if state is None:
        return None
    length = (state.get("outputs") or {}).get(stream)
    if length is None:
        return None
    length = int(length)
    path = derived_dir(vault, indicator, key) / f"{stream}.jsonl"
    if length == 0:
        return b""
    try:
        with open(path, "rb") as f:
            data = f.read(length)
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing but its state says {length} bytes were committed; "
            f"rebuild it with `indicators reset --vault {vault} --indicator {indicator} --inst {key.inst_id}` "
            f"and `indicators run --vault {vault}`"
        ) from None
    if len(data) < length:
        raise ConfigError(
            f"{path} has {len(data)} bytes but its state says {length} were committed (was it edited or "
            f"truncated?); rebuild it with `indicators reset --vault {vault} --indicator {indicator}`"
        )
    return data


def committed_records(vault: Path, indicator: str, key: InstrumentKey, stream: str) -> list[dict] | None:
    data = committed_bytes(vault, indicator, key, stream)
    if data is None:
        return None
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def instruments(vault: Path, indicator: str = "volume") -> list[InstrumentKey]:
    """Instruments that have a state file for ``indicator``, sorted by exchange, market, id."""
    keys = []
    for path in (vault / "state" / indicator).glob("*/*/*.state.json"):
        exchange, market = path.parts[-3:-1]
        keys.append(InstrumentKey(exchange, market, path.name.removesuffix(".state.json")))
    return sorted(keys, key=lambda k: (k.exchange, k.market, k.inst_id))


def select_instruments(vault: Path, wanted: list[str] | None, indicator: str = "volume") -> list[InstrumentKey]:
    """The instruments of ``indicator`` named by ``--inst`` (all when none), or a message saying which run to do."""
    found = instruments(vault, indicator)
    if not found:
        raise ConfigError(
            f"no committed `{indicator}` outputs in {vault}: run `indicators run --vault {vault}` first "
            f"(with the `{indicator}` indicator enabled)"
        )
    if not wanted:
        return found
    out = []
    for name in wanted:
        match = [k for k in found if name in (k.inst_id, k.label, f"{k.exchange}/{k.inst_id}")]  # aggregate/NAME
        if not match:
            have = ", ".join(k.inst_id for k in found)
            raise ConfigError(
                f"--inst {name}: no committed `{indicator}` outputs for it in {vault} (found: {have}); "
                f"run `indicators run --vault {vault} --inst {name}` first"
            )
        out += [k for k in match if k not in out]
    return out


_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$")


def parse_time(text: str, option: str) -> int:
    """``2024-11-23``, ``2024-11-23T14:05``, ``2024-11-23T14:05:00Z`` (UTC) as minutes since the epoch."""
    m = _TIME.match(text.strip())
    if m is None:
        raise ConfigError(f"{option} {text!r}: expected a UTC time like 2024-11-23 or 2024-11-23T14:05[:00][Z]")
    y, mo, d, hh, mm, ss = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=timezone.utc)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: {exc}") from None
    return int(t.timestamp()) // 60


def minute_of_iso(text: str) -> int:
    """Minutes since the epoch of an ISO time ``2024-11-23T14:05:00Z`` (milliseconds allowed, ignored)."""
    t = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                 tzinfo=timezone.utc)
    return int(t.timestamp()) // 60
