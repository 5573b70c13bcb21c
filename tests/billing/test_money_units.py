"""Amounts and the counters' integer nano-units convert in one place, both ways."""

from __future__ import annotations

from decimal import Decimal

from apps.billing.models import money_from_units, money_units


def test_amounts_become_whole_units_rounded_up() -> None:
    assert money_units(Decimal("0.0025")) == 2_500_000
    assert money_units(Decimal("0.00000000001")) == 1  # a hold never undershoots
    assert money_units(None) is None  # no limit


def test_units_read_back_as_the_meter_shows_them() -> None:
    assert money_from_units(2_500_000) == Decimal("0.0025")
    assert money_from_units(money_units(Decimal("1.5"))) == Decimal("1.5000")
