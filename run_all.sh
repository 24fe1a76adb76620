#!/usr/bin/env sh
# Run every enabled indicator over the vault, on Linux/macOS (same as run_all.bat).
# Usage: ./run_all.sh [VAULT] [CONFIG]   (defaults: Vault, indicators.toml if present)
VAULT="${1:-Vault}"
CONFIG="${2:-}"
if [ -z "$CONFIG" ] && [ -f indicators.toml ]; then CONFIG=indicators.toml; fi
if command -v indicators >/dev/null 2>&1; then CMD="indicators"; else CMD="python3 -m indicator_core"; fi
if [ -n "$CONFIG" ]; then exec $CMD run --vault "$VAULT" --config "$CONFIG"; else exec $CMD run --vault "$VAULT"; fi
