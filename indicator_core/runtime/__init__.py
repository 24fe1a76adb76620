"""The runtime: one exact, resumable pass over every instrument's inputs, feeding every enabled indicator.

Each module holds one job:

- :mod:`.summary` — what a run reports (failures with their fixes, counters);
- :mod:`.consumer` — one indicator of one instrument: outputs, state file, the commit protocol;
- :mod:`.dispatch` — a stream's events to the consumers, through one call path;
- :mod:`.host` — what a run loads once: plugins, input kinds, settings, the contract table;
- :mod:`.records` — indicators that read other indicators' committed records (SPEC section 12);
- :mod:`.instrument_pass` — one instrument's new lines of one input kind, read once, committed;
- :mod:`.parallel` — instruments on worker processes (``--jobs``) or a Dask cluster;
- :mod:`.batch` — ``indicators run``;
- :mod:`.follow` — ``indicators run --follow``.

The runtime names no input kind, venue or indicator: those come from the
registries the plugins fill (see :mod:`indicator_core.hookspecs`).  The
package's ``__init__`` imports nothing, so that ``indicators --version`` and
the modules a pool worker needs load no more than they use.
"""
