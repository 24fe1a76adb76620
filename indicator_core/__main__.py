"""``python -m indicator_core`` is the ``indicators`` command."""

import sys

from .cli import main

sys.exit(main())
