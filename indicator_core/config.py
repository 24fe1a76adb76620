"""The config file: one TOML document validated with pydantic.

Every problem is reported as ``FILE: key.path: what is wrong (got VALUE)``
with exit status 2, so a user can fix it without reading code.  Plugin tables
(``[plugins.NAME]``) are validated against the indicator's own ``Params``
model once the plugins are loaded (see :func:`plugin_settings`).
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .indicator import Indicator, Params

DEFAULT_PATTERNS = [
    "trades_{date}.jsonl", "trades_{date}.csv", "{inst}-trades-{date}.csv",
    # closed days, compressed: read whole
    "trades_{date}.jsonl.gz", "trades_{date}.csv.gz", "{inst}-trades-{date}.zip",
    # the venues' own daily archives: Binance's aggregated trades, Bybit's trades
    "{inst}-aggTrades-{date}.csv", "{inst}-aggTrades-{date}.zip", "{inst}{date}.csv.gz", "{inst}{date}.csv",
]
# The UTC offsets of file days set in the config, by pattern, for every venue (an exporter that names its
# files by local time).  The venues' own archives need none here: their formats know their days (OKX's cut
# at midnight UTC+8, sources.formats.VenueFormat.day_offsets).
DEFAULT_DAY_OFFSETS: dict[str, str] = {}


def jsonl_patterns(patterns: list[str]) -> list[str]:
    """``patterns`` unchanged when each is a ``.jsonl`` file name with a ``{date}`` (books, derivatives)."""
    for p in patterns:
        if "{date}" not in p or not p.endswith(".jsonl") or "/" in p or "\\" in p:
            raise ValueError(f"pattern {p!r}: a .jsonl file name inside the instrument folder with a {{date}}")
    return patterns


def instrument_labels(labels: list[str], what: str) -> list[str]:
    """``labels`` unchanged when each is an instrument's ``exchange/market/INST_ID``; else the error naming it."""
    from .storage import FOLDER_NAME

    for label in labels:
        parts = label.split("/")
        if len(parts) != 3 or not all(FOLDER_NAME.fullmatch(p) for p in parts):
            raise ValueError(f"{what}{label!r} is not exchange/market/INST_ID, like okx/perps/BTC-USDT-SWAP")
    return labels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Strict):
    """Where the raw trades are: ``{vault}/{root}/{exchange}/{market}/{INST_ID}/{pattern}``."""

    root: str = "raw/trades"
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_PATTERNS), min_length=1)
    # the time zone of the day a file name gives, by pattern (UTC when not named)
    day_offsets: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DAY_OFFSETS))
    # how far (minutes) a trade may lie outside its file's day
    day_tolerance_minutes: int = Field(default=10, ge=0, le=720)

    @field_validator("day_offsets")
    @classmethod
    def _offsets(cls, offsets: dict[str, str]) -> dict[str, str]:
        from .sources.timecheck import parse_offset

        for pattern, text in offsets.items():
            parse_offset(text)
        return offsets

    def day_offset_minutes(self) -> dict[str, int]:
        from .sources.timecheck import parse_offset

        return {p: parse_offset(t) for p, t in self.day_offsets.items()}

    @field_validator("patterns")
    @classmethod
    def _one_date(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            if "{date}" not in p:
                raise ValueError(f"pattern {p!r} needs a {{date}} placeholder so files can be read in date order")
            if "/" in p or "\\" in p:
                raise ValueError(f"pattern {p!r} must be a file name inside the instrument folder")
        return patterns


BOOK_CHANNELS = ("books", "books50-l2-tbt", "books-l2-tbt", "books5", "bbo-tbt")
BookChannel = Literal[BOOK_CHANNELS]  # type: ignore[valid-type]  # the same names, as a validated type


class BooksConfig(_Strict):
    """Where the raw order books are, and which OKX channel each instrument's recording holds."""

    root: str = "raw/books"
    patterns: list[str] = Field(default_factory=lambda: ["books_{date}.jsonl"], min_length=1)
    channel: BookChannel = "books"
    channels: dict[str, BookChannel] = Field(default_factory=dict)  # per instrument, overrides `channel`

    @field_validator("patterns")
    @classmethod
    def _jsonl(cls, patterns: list[str]) -> list[str]:
        return jsonl_patterns(patterns)


class DerivsConfig(_Strict):
    """Where the raw derivatives pushes are (SPEC section 17), and how late a push may come."""

    root: str = "raw/derivs"
    # the venues' pushes, and saved Coinalyze history replies (one per line, the endpoint in the name)
    patterns: list[str] = Field(default_factory=lambda: [
        "derivs_{date}.jsonl", "coinalyze-open-interest-history_{date}.jsonl",
        "coinalyze-funding-rate-history_{date}.jsonl", "coinalyze-liquidation-history_{date}.jsonl"], min_length=1)
    # a minute takes no more pushes once one this many seconds past its end was read (the feeds are not
    # strictly in time order); a later one for it is late
    late_seconds: int = Field(default=10, ge=0, le=3600)
    # instruments whose files hold other instruments' liquidations too ("exchange/market/INST_ID": OKX's
    # liquidation-orders feed of an instrument type recorded in one folder); each instrument of the same
    # exchange and market takes its own from them (SPEC 17)
    liquidations_from: list[str] = Field(default_factory=list)

    @field_validator("liquidations_from")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        return instrument_labels(labels, "")

    @field_validator("patterns")
    @classmethod
    def _jsonl(cls, patterns: list[str]) -> list[str]:
        return jsonl_patterns(patterns)


class RecordEndpoints(_Strict):
    """The venues' URLs (SPEC section 20): a proxy, or a local replay server, stands in for a venue here."""

    okx_ws: str = "wss://ws.okx.com:8443/ws/v5/public"
    okx_rest: str = "https://www.okx.com"
    binance_ws: str = "wss://fstream.binance.com/stream"
    binance_rest: str = "https://fapi.binance.com"
    bybit_ws: str = "wss://stream.bybit.com/v5/public/linear"
    bybit_rest: str = "https://api.bybit.com"


class RecordConfig(_Strict):
    """``indicators record``: what to record from the venues' public streams, and how (SPEC section 20)."""

    instruments: list[str] = Field(default_factory=list)  # "exchange/market/SYMBOL", e.g. "okx/perps/BTC-USDT-SWAP"
    channels: list[Literal["trades", "books", "derivs"]] = Field(default_factory=lambda: ["trades"], min_length=1)
    # per instrument, replacing `channels`
    channels_of: dict[str, list[Literal["trades", "books", "derivs"]]] = Field(default_factory=dict)
    fsync_seconds: float = Field(default=1.0, gt=0, le=3600)
    backfill_max_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    okx_book_channel: BookChannel = "books"
    ping_seconds: float = Field(default=20.0, gt=0, le=600)
    pong_seconds: float = Field(default=10.0, gt=0, le=600)
    backoff_first_seconds: float = Field(default=1.0, gt=0, le=600)
    backoff_max_seconds: float = Field(default=30.0, gt=0, le=3600)
    endpoints: RecordEndpoints = Field(default_factory=RecordEndpoints)

    @field_validator("instruments")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        instrument_labels(labels, "")
        for label in labels:
            if label.split("/")[0] not in ("okx", "binance", "bybit"):
                raise ValueError(f"{label!r}: the recorder records okx, binance and bybit instruments")
        if len(set(labels)) != len(labels):
            raise ValueError("an instrument is listed twice")
        return labels

    @field_validator("channels_of")
    @classmethod
    def _per_instrument(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        instrument_labels(list(value), "")
        return value


class RunConfig(_Strict):
    fill_empty_bars: bool = True
    batch_bytes: int = Field(default=4 * 1024 * 1024, ge=64, le=1024**3)
    commit_seconds: float = Field(default=10.0, gt=0)


class InstrumentConfig(_Strict):
    kind: Literal["linear", "inverse", "spot"]
    ct_val: Decimal = Field(gt=0)
    ct_val_ccy: str = Field(min_length=1)


class NotifierConfig(_Strict):
    """``[notify.NAME]``: where committed signals are delivered (see :mod:`indicator_core.notify`)."""

    kind: Literal["stdout", "command", "webhook"]
    url: str | None = None
    command: list[str] | None = Field(default=None, min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    # signal streams declared by the installed indicators (checked once they are loaded: notify.check_streams)
    streams: list[str] = Field(default_factory=lambda: ["confluence"], min_length=1)
    enabled: bool = True
    timeout_seconds: float = Field(default=5.0, gt=0)   # one delivery attempt
    wait_seconds: float = Field(default=30.0, ge=0)     # `run` (not --follow) and `notify`: time spent retrying
    retry_max_seconds: float = Field(default=60.0, gt=0)  # the longest pause between two attempts
    replay_history: bool = False  # a new notifier also delivers the records already written

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not (url.startswith("http://") or url.startswith("https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        return url

    @field_validator("streams")
    @classmethod
    def _streams(cls, streams: list[str]) -> list[str]:
        if len(set(streams)) != len(streams):
            raise ValueError(f"a stream is listed twice: {streams}")
        return streams

    @model_validator(mode="after")
    def _target(self) -> "NotifierConfig":
        if self.kind == "webhook" and self.url is None:
            raise ValueError("kind = \"webhook\" needs url = \"http://host:port/path\"")
        if self.kind == "command" and self.command is None:
            raise ValueError("kind = \"command\" needs command = [\"program\", \"arg\", ...]")
        if self.kind != "webhook" and (self.url is not None or self.headers):
            raise ValueError(f"url and headers are for kind = \"webhook\", not {self.kind!r}")
        if self.kind != "command" and self.command is not None:
            raise ValueError(f"command is for kind = \"command\", not {self.kind!r}")
        return self


class AggregateConfig(_Strict):
    """``[aggregates.NAME]``: instruments of several venues read as one tape (SPEC section 16)."""

    members: list[str] = Field(min_length=2)  # "exchange/market/INST_ID", the first one's prices are the aggregate's

    @field_validator("members")
    @classmethod
    def _labels(cls, members: list[str]) -> list[str]:
        instrument_labels(members, "member ")
        if len(set(members)) != len(members):
            raise ValueError(f"a member is listed twice: {members}")
        return members


class StrategyConfig(_Strict):
    """``[backtest.NAME]``: one paper strategy (SPEC section 19)."""

    signal: str = Field(min_length=1)  # "confluence" or a study signal of section 13
    min_score: Optional[int] = Field(default=None, ge=1)  # confluence: at least this score
    conviction: list[Literal["max", "high", "normal"]] = Field(default_factory=list)  # confluence: only these
    latency_ms: int = Field(default=250, ge=0, le=3_600_000)
    size_quote: Decimal = Field(default=Decimal("10000"), gt=0)
    fee_taker_bp: Decimal = Field(default=Decimal("5"), ge=0)
    stop_bp: Optional[Decimal] = Field(default=None, gt=0)
    target_bp: Optional[Decimal] = Field(default=None, gt=0)
    max_hold_minutes: int = Field(default=60, ge=1)
    fills: Literal["book", "trade"] = "book"


class Config(_Strict):
    vault: Path | None = None
    input: InputConfig = Field(default_factory=InputConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    books: BooksConfig = Field(default_factory=BooksConfig)
    derivs: DerivsConfig = Field(default_factory=DerivsConfig)
    instruments: dict[str, InstrumentConfig] = Field(default_factory=dict)
    instruments_files: list[Path] = Field(default_factory=list)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notify: dict[str, NotifierConfig] = Field(default_factory=dict)
    aggregates: dict[str, AggregateConfig] = Field(default_factory=dict)
    backtest: dict[str, StrategyConfig] = Field(default_factory=dict)
    record: RecordConfig = Field(default_factory=RecordConfig)
    source: str = Field(default="(defaults)", exclude=True)

    @field_validator("instruments")
    @classmethod
    def _inst_names(cls, value: dict[str, InstrumentConfig]) -> dict[str, InstrumentConfig]:
        from .storage import FOLDER_NAME

        for name in value:  # any name an instrument folder may have (the unknown-instrument message suggests it)
            if not FOLDER_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not an instrument id: letters, digits, '.', '_' and '-' (like BTC-USDT-SWAP)"
                )
        return value

    @field_validator("aggregates")
    @classmethod
    def _aggregate_names(cls, value: dict[str, AggregateConfig]) -> dict[str, AggregateConfig]:
        from .storage import FOLDER_NAME

        for name in value:
            if not FOLDER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an aggregate name: letters, digits, '.', '_' and '-' (like BTC)")
        return value

    @field_validator("notify")
    @classmethod
    def _notifier_names(cls, value: dict[str, NotifierConfig]) -> dict[str, NotifierConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"notifier name {name!r} must be letters, digits, _ and - (it names a folder)")
        return value


def _describe(exc: ValidationError, source: str, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README for the allowed keys)"
        got = err.get("input")
        got_text = "" if err["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {loc or '(top level)'}: {msg}{got_text}")
    return "\n".join(lines)


def load_config(path: Path | None) -> Config:
    """Read and validate ``path``; ``None`` gives the defaults of SPEC."""
    if path is None:
        return Config()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        cfg = Config.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path))) from exc
    # relative paths in the file are relative to the file
    base = path.parent
    updates: dict[str, Any] = {
        "instruments_files": [p if p.is_absolute() else base / p for p in cfg.instruments_files]
    }
    if cfg.vault is not None and not cfg.vault.is_absolute():
        updates["vault"] = base / cfg.vault
    return cfg.model_copy(update=updates)


class PluginSetting(BaseModel):
    """One indicator as configured: enabled or not, and its validated parameters."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    enabled: bool
    params: Params


def check_patterns(cfg: Config, endings: set[str]) -> None:
    """Every ``[input] patterns`` entry ends in what an installed venue format reads (checked once the
    plugins, which register the formats, are loaded)."""
    for k, p in enumerate(cfg.input.patterns):
        if not any(p.endswith(e) for e in endings):
            raise ConfigError(
                f"{cfg.source}: input.patterns.{k}: pattern {p!r} must end in one of {', '.join(sorted(endings))} "
                "(the file endings the installed venue formats read; `indicators plugins` lists them)"
            )


def plugin_settings(cfg: Config, indicators: dict[str, type[Indicator]]) -> dict[str, PluginSetting]:
    """Validate every ``[plugins.NAME]`` table against the installed indicators."""
    unknown = sorted(set(cfg.plugins) - set(indicators))
    if unknown:
        raise ConfigError(
            f"{cfg.source}: plugins.{unknown[0]}: no installed indicator has this name; "
            f"installed: {', '.join(sorted(indicators))} (see `indicators plugins`)"
        )
    out: dict[str, PluginSetting] = {}
    for name, cls in indicators.items():
        table = dict(cfg.plugins.get(name, {}))
        enabled = table.pop("enabled", getattr(cls, "enabled_by_default", True))
        if not isinstance(enabled, bool):
            raise ConfigError(f"{cfg.source}: plugins.{name}.enabled: must be true or false (got {enabled!r})")
        if not enabled and not table:  # nothing to check: its defaults, without building its validator
            out[name] = PluginSetting(enabled=False, params=cls.Params.model_construct())
            continue
        try:
            params = cls.Params.model_validate(table)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, cfg.source, f"plugins.{name}")) from exc
        out[name] = PluginSetting(enabled=enabled, params=params)
    return out
