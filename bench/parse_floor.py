"""The parse-only floor: read the files and orjson.loads every line, nothing else.

    python bench/parse_floor.py INSTRUMENT_FOLDER
"""

import sys
from pathlib import Path

import orjson

n = 0
for path in sorted(Path(sys.argv[1]).glob("trades_*.jsonl")):
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
print(n)
