"""Bounds shared by models and forms of every app.

No Django models here: apps' models import it (accounts, the lowest app, included).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.validators import MaxValueValidator, MinValueValidator

# The moments a typed date and time may name (a price's or rate's start, a join code's
# expiry). A year-1 value overflowed when Django moved it between time zones (a 500).
SANE_MOMENTS = [
    MinValueValidator(datetime(2000, 1, 1, tzinfo=UTC)),
    MaxValueValidator(datetime(2099, 12, 31, tzinfo=UTC)),
]
