"""Plain parameterised SQL for the reads every chat turn makes.

Building a query through the ORM costs far more than running it: on the project's build
machine a one-row `.filter(...).first()` takes 300-900 us of CPU, the same statement written
out 50-150 us. A turn makes a handful of such reads for every student's every message, so
those (and only those) are written out, with the tables' and columns' names taken from the
models. The SQL is the same on SQLite and PostgreSQL; values go as parameters, never into
the text. `instances` goes through `Model.objects.raw`, so fields are converted exactly as
the ORM converts them. The hot-path writes of the quota counters do the same
(apps/billing/counters.py).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


# Names are looked up once per process: the statements are written on every turn.
@cache
def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def column(model: type[Model], field: str) -> str:
    """A field's column, qualified by its table (`field`: the field's name, or its attname)."""
    return f"{table(model)}.{connection.ops.quote_name(model._meta.get_field(field).column)}"


def when(value: datetime) -> object:
    """A datetime as the database compares it (SQLite keeps naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def instances(model: type[M], sql: str, params: list[Any]) -> list[M]:
    """The rows of `sql` (which selects the model's columns, pk included) as instances."""
    return list(model.objects.raw(sql, params))


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
