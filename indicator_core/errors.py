"""Errors the command line turns into exit statuses (SPEC section 9)."""

from __future__ import annotations


class IndicatorError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_status = 1


class ConfigError(IndicatorError):
    """Bad usage or a bad config file: exit status 2."""

    exit_status = 2


class UnknownInstrumentError(ConfigError):
    """An instrument with no contract definition; it is never guessed."""


class StateError(IndicatorError):
    """A state file that cannot be trusted (corrupt, truncated, unknown format)."""


class FingerprintMismatch(ConfigError):
    """An indicator's parameters changed after it wrote output."""


class LockedError(IndicatorError):
    """Another run holds the vault."""


class StorageError(IndicatorError):
    """The vault's disk refused a write (full, read-only, permissions): the run stops, whatever the instrument."""
