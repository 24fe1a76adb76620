"""The volume analyzer's constants."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)  # an empty minute's total, told apart by identity (VolumeAnalyzer._remember)

