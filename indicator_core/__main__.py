"""``python -m indicator_core`` is the ``indicators`` command."""

from .command import console

console()
