"""The built-in indicators, each a pluggy plugin on the ``indicator_core`` hooks."""
