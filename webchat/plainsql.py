"""Plain parameterised SQL for the reads every chat turn makes.

Building a query through the ORM costs far more than running it: on the project's build
machine a one-row `.filter(...).first()` takes 300-900 us of CPU, the same statement written
out 50-150 us. A turn makes a handful of such reads for every student's every message, so
those (and only those) are written out, with the tables' and columns' names taken from the
models. The SQL is the same on SQLite and PostgreSQL; values go as parameters, never into
the text. `instances` converts each column as the ORM does (the backend's converters, then
the field's) and builds the model with `Model.from_db`, as a queryset does, without a
queryset's machinery; `insert` and `update` prepare values as `save()` and
`QuerySet.update()` do. They send no signals, so they serve only models no receiver listens
to (tests/test_plainsql.py checks). The hot-path writes of the quota counters are written out
the same way (apps/billing/counters.py).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from django.db.models.base import DEFERRED

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


def _db() -> Any:
    """This thread's connection itself. `django.db.connection` is a proxy that looks the
    connection up in a context-local on every attribute read, and the fields preparing a
    row's values read it a hundred times a turn."""
    return connections[DEFAULT_DB_ALIAS]


Converter = Any  # (value, expression, connection) -> value


@cache
def _reading(
    model: type[Model], columns: tuple[str, ...]
) -> tuple[list[tuple[int | None, Any, tuple[Converter, ...]]], list[tuple[int, str]]]:
    """For each of the model's concrete fields: where its column is in a row (None: not
    selected, deferred), its column expression and the converters its value goes through;
    and the other columns (as `raw()` does, set on the instance as attributes).
    Worked out once per process: the backend's converters are its first connection's
    methods, which read only settings (the time zone) from it."""
    at: dict[str, int] = {}
    for index, name in enumerate(columns):
        at.setdefault(name, index)
    reading = []
    for field in model._meta.concrete_fields:
        column_expression = field.get_col(model._meta.db_table)
        converters = (
            *connection.ops.get_db_converters(column_expression),
            *column_expression.get_db_converters(connection),
        )
        reading.append((at.pop(field.column, None), column_expression, converters))
    return reading, [(index, name) for name, index in at.items()]


def instances(model: type[M], sql: str, params: list[Any]) -> list[M]:
    """The rows of `sql` (which selects the model's columns, pk included, and may add
    others: they become attributes) as instances."""
    db = _db()
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        columns = tuple(description[0] for description in cursor.description)
        found = cursor.fetchall()
    reading, others = _reading(model, columns)
    made = []
    for row in found:
        values = []
        for index, column_expression, converters in reading:
            if index is None:
                values.append(DEFERRED)
                continue
            value = row[index]
            for convert in converters:
                value = convert(value, column_expression, db)
            values.append(value)
        instance = model.from_db(db.alias, None, values)
        for index, name in others:
            setattr(instance, name, row[index])
        made.append(instance)
    return made


@cache
def _insert_sql(model: type[Model]) -> tuple[str, tuple[Any, ...]]:
    meta = model._meta
    fields = tuple(field for field in meta.local_concrete_fields if field is not meta.auto_field)
    if meta.auto_field is None or any(field.has_db_default() or field.generated for field in fields):
        raise TypeError(f"plainsql.insert writes models with an automatic key and plain fields, not {model.__name__}")
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    key = connection.ops.quote_name(meta.auto_field.column)
    return f"INSERT INTO {table(model)} ({names}) VALUES ({marks}) RETURNING {key}", fields


def insert(instance: M) -> M:
    """Write a new instance as `instance.save(force_insert=True)` would (`auto_now_add`
    filled in, values prepared by their fields), and set its key."""
    if instance.pk is not None:
        raise ValueError("plainsql.insert writes new rows, with the key the database gives")
    instance._prepare_related_fields_for_save(operation_name="save")  # a parent saved since it was set
    sql, fields = _insert_sql(type(instance))
    db = _db()
    params = [field.get_db_prep_save(field.pre_save(instance, add=True), db) for field in fields]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        (instance.pk,) = cursor.fetchone()
    instance._state.adding = False
    instance._state.db = db.alias
    return instance


def _where(model: type[Model], where: dict[str, Any]) -> tuple[str, list[Any]]:
    """`filter(**where)` for plain equalities (field names or attnames; None: IS NULL)."""
    field = model._meta.get_field
    conditions = " AND ".join(
        f"{column(model, name)} IS NULL" if value is None else f"{column(model, name)} = %s"
        for name, value in where.items()
    )
    db = _db()
    params = [field(name).get_db_prep_save(value, db) for name, value in where.items() if value is not None]
    return conditions, params


def select(model: type[M], where: dict[str, Any]) -> list[M]:
    """`model.objects.filter(**where)`, every column, for plain equalities."""
    conditions, params = _where(model, where)
    return instances(model, f"SELECT * FROM {table(model)} WHERE {conditions}", params)


def update(model: type[M], where: dict[str, Any], **values: Any) -> list[M]:
    """`model.objects.filter(**where).update(**values)` for plain equalities, returning the
    rows as they were written."""
    field = model._meta.get_field
    assignments = ", ".join(f"{connection.ops.quote_name(field(name).column)} = %s" for name in values)
    conditions, where_params = _where(model, where)
    db = _db()
    params = [field(name).get_db_prep_save(value, db) for name, value in values.items()]
    return instances(
        model, f"UPDATE {table(model)} SET {assignments} WHERE {conditions} RETURNING *", params + where_params
    )


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with _db().cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
