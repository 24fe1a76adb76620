"""``python -m indicator_core`` is the ``indicators`` command."""

from .cli import console

console()
