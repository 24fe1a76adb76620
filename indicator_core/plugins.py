"""Loading plugins: the built-in ones by module name, third-party ones by entry point.

Built-in indicators are ordinary plugins that the host registers under the
same names their entry points carry, so an installed copy of this project is
not loaded twice and a third-party package can never shadow them silently.
``INDICATOR_CORE_DISABLE_ENTRYPOINTS=1`` skips third-party entry points (for
debugging a broken plugin).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigError, IndicatorError
from .indicator import Indicator
from .instruments import Instrument
from .sources.formats import VenueFormat
from .streams.base import StreamKind

# The folder plugins/ of the repository, installed as the package indicator_core_plugins.
BUILTIN_PLUGINS: dict[str, str] = {
    "volume": "indicator_core_plugins.volume",
    "cvd": "indicator_core_plugins.cvd_adapter",
    "vwap": "indicator_core_plugins.vwap_adapter",
    "candles": "indicator_core_plugins.candles_adapter",
    "wicks": "indicator_core_plugins.wicks_adapter",
    "whales": "indicator_core_plugins.whales",
    "poor_levels": "indicator_core_plugins.poor_levels",
    "confluence": "indicator_core_plugins.confluence",
    "buckets": "indicator_core_plugins.buckets",
    "derivs": "indicator_core_plugins.derivs",
    "footprint": "indicator_core_plugins.footprint",
}
# The built-in input kinds (trades, books) and venue formats (OKX, Binance, Bybit) are registered through the
# same hooks as a plugin's.
BUILTIN_KINDS_PLUGIN = ("input_kinds", "indicator_core.builtin_kinds")
BUILTIN_FORMATS_PLUGIN = ("venue_formats", "indicator_core.builtin_formats")
RESERVED_NAMES = ("quality", "notify")  # folders under derived/ and state/ that are not indicators
ENTRYPOINT_GROUP = hookspecs.PROJECT


@dataclass(frozen=True)
class IndicatorInfo:
    cls: type[Indicator]
    plugin_name: str
    source: str  # "built-in" or the distribution "name version"


def make_plugin_manager(*, entrypoints: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, module in (*BUILTIN_PLUGINS.items(), BUILTIN_KINDS_PLUGIN, BUILTIN_FORMATS_PLUGIN):
        pm.register(importlib.import_module(module), name=name)
    if entrypoints and os.environ.get("INDICATOR_CORE_DISABLE_ENTRYPOINTS") != "1":
        try:
            pm.load_setuptools_entrypoints(ENTRYPOINT_GROUP)
        except Exception as exc:  # a broken third-party package must say which one it is
            raise IndicatorError(f"loading the plugins of entry-point group {ENTRYPOINT_GROUP!r} failed: {exc!r}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise IndicatorError(f"a plugin implements a hook that does not exist: {exc}") from exc
    return pm


def _sources(pm: pluggy.PluginManager) -> dict[str, str]:
    out = {name: "built-in" for name in (*BUILTIN_PLUGINS, BUILTIN_KINDS_PLUGIN[0], BUILTIN_FORMATS_PLUGIN[0])}
    for plugin, dist in pm.list_plugin_distinfo():
        name = pm.get_name(plugin)
        if name is not None and name not in BUILTIN_PLUGINS:
            out[name] = f"{dist.metadata['name']} {dist.version}"
    return out


def _call_each(pm: pluggy.PluginManager, hook_name: str, register_for: Any) -> None:
    """Call a registration hook on each plugin with a ``register`` bound to that plugin."""
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        kwargs = {"register": register_for(impl.plugin_name)}
        impl.function(*[kwargs[a] for a in impl.argnames])


def collect_input_kinds(pm: pluggy.PluginManager) -> dict[str, StreamKind]:
    """Every input kind by name (:func:`hookspecs.register_input_kinds`), the built-in ones first."""
    found: dict[str, StreamKind] = {}
    owner: dict[str, str] = {}

    def register_for(plugin_name: str):
        def register(kind: StreamKind) -> None:
            if not isinstance(kind, StreamKind):
                raise IndicatorError(f"plugin {plugin_name!r} registered {kind!r} as an input kind, which is not a "
                                     "StreamKind instance")
            name = kind.name
            if not name or not name.replace("_", "").isalnum() or name != name.lower():
                raise IndicatorError(f"plugin {plugin_name!r}: input kind name {name!r} must be lowercase letters, "
                                     "digits and underscores")
            if name in found:
                raise ConfigError(f"input kind {name!r} is registered by both {owner[name]!r} and {plugin_name!r}; "
                                  "uninstall one of them")
            found[name], owner[name] = kind, plugin_name

        return register

    _call_each(pm, "register_input_kinds", register_for)
    return found


@dataclass(frozen=True)
class FormatInfo:
    fmt: VenueFormat
    plugin_name: str
    source: str  # "built-in" or the distribution "name version"


def collect_venue_formats(pm: pluggy.PluginManager) -> list[FormatInfo]:
    """Every venue format (:func:`hookspecs.register_venue_formats`) with the plugin that registered it."""
    sources = _sources(pm)
    found: list[FormatInfo] = []

    def register_for(plugin_name: str):
        def register(fmt: VenueFormat) -> None:
            if not isinstance(fmt, VenueFormat):
                raise IndicatorError(f"plugin {plugin_name!r} registered {fmt!r} as a venue format, which is not a "
                                     "VenueFormat")
            found.append(FormatInfo(fmt, plugin_name, sources.get(plugin_name, "unknown")))

        return register

    _call_each(pm, "register_venue_formats", register_for)
    return found


def collect_indicators(pm: pluggy.PluginManager, kinds: dict[str, StreamKind] | None = None) -> dict[str, IndicatorInfo]:
    """Every indicator class by name; each must consume one of ``kinds`` (default: those ``pm`` registers)."""
    if kinds is None:
        kinds = collect_input_kinds(pm)
    found: dict[str, IndicatorInfo] = {}
    sources = _sources(pm)

    def register_for(plugin_name: str):
        def register(cls: type[Indicator]) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Indicator)):
                raise IndicatorError(f"plugin {plugin_name!r} registered {cls!r}, which is not an Indicator subclass")
            name = cls.name
            if not name or not name.replace("_", "").isalnum() or name != name.lower() or name in RESERVED_NAMES:
                raise IndicatorError(
                    f"plugin {plugin_name!r}: indicator name {name!r} must be lowercase letters, digits "
                    f"and underscores, and none of {', '.join(RESERVED_NAMES)}"
                )
            if cls.consumes not in kinds:
                raise IndicatorError(
                    f"plugin {plugin_name!r}: indicator {name!r} consumes {cls.consumes!r}; the input streams are "
                    + " and ".join(repr(k) for k in kinds)
                )
            if name in found:
                raise ConfigError(
                    f"indicator {name!r} is registered by both {found[name].plugin_name!r} and {plugin_name!r}; "
                    "uninstall one of them"
                )
            found[name] = IndicatorInfo(cls, plugin_name, sources.get(plugin_name, "unknown"))

        return register

    _call_each(pm, "register_indicators", register_for)
    return found


def collect_instruments(pm: pluggy.PluginManager) -> list[Instrument]:
    out: list[Instrument] = []
    _call_each(pm, "register_instruments", lambda _name: out.append)
    return out
