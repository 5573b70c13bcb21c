"""The quota counters' hot-path statements, in plain parameterised SQL.

Every request runs these (hold, then settle), so they skip the ORM's query building; the
SQL is the same on SQLite and PostgreSQL. Each `*_add` is one conditional UPDATE whose
affected-row count says whether the budget had room: that statement is the concurrency
guarantee (PostgreSQL re-checks the WHERE clause on the row it locked; SQLite runs one
writer at a time), so no SELECT ... FOR UPDATE is needed for the check itself. A statement
that changes several budgets (a student's and the class pool's) takes their row locks in
one order on PostgreSQL (`_counters_update`), or two requests of one student deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection, transaction

from webchat import plainsql

from .models import Hold, RateCounter, UsageCounter

Budget = tuple[str, int | None, int | None]  # scope key, token limit, money limit (units)


def _when(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def _execute(sql: str, params: list[object]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def rate_add(*, scope_key: str, window_start: datetime, tokens: int, rpm: int | None, tpm: int | None) -> int:
    """Count one request of `tokens` in the minute window, if RPM and TPM allow. Rows changed."""
    sql = (
        f"UPDATE {RateCounter._meta.db_table} SET requests = requests + 1, tokens = tokens + %s "
        "WHERE scope_key = %s AND window_start = %s"
    )
    params: list[object] = [tokens, scope_key, _when(window_start)]
    if rpm is not None:
        sql += " AND requests + 1 <= %s"
        params.append(rpm)
    if tpm is not None:
        sql += " AND tokens + %s <= %s"
        params += [tokens, tpm]
    return _execute(sql, params)


def _counters_update(
    *,
    assign: str,
    params: list[object],
    period_start: datetime,
    keys: list[str],
    condition: str = "",
    more: Sequence[object] = (),
) -> int:
    """UPDATE the budget rows `keys` of a period: SET `assign`, where `condition` holds.
    Rows changed. On PostgreSQL the rows are locked first, in scope-key order: a plain
    multi-row UPDATE locks them in the order it finds them, which changes as rows are
    rewritten, and two statements for one student (a take and a settle, from two tabs or
    chat and /v1) that lock the student's row and the pool's in opposite orders deadlock.
    (SQLite runs one writer at a time.)"""
    table = UsageCounter._meta.db_table
    marks = ", ".join(["%s"] * len(keys))
    if connection.vendor == "postgresql":
        sql = (
            f"UPDATE {table} SET {assign} FROM (SELECT id FROM {table} WHERE period_start = %s "
            f"AND scope_key IN ({marks}) ORDER BY scope_key FOR UPDATE) AS locked WHERE {table}.id = locked.id"
        )
    else:
        sql = f"UPDATE {table} SET {assign} WHERE period_start = %s AND scope_key IN ({marks})"
    if condition:
        sql += f" AND ({condition})"
    return _execute(sql, [*params, _when(period_start), *keys, *more])


def budgets_add(*, period_start: datetime, budgets: list[Budget], tokens: int, units: int) -> int:
    """Hold `tokens` and `units` on every budget that has room, in one statement. Rows changed
    (fewer than len(budgets): some budget had no room, or its row does not exist yet)."""
    clauses: list[str] = []
    params: list[object] = []
    for scope_key, token_limit, cost_limit in budgets:
        clause = "(scope_key = %s"
        params.append(scope_key)
        if token_limit is not None:
            clause += " AND tokens_used + tokens_held + %s <= %s"
            params += [tokens, token_limit]
        if cost_limit is not None:
            clause += " AND cost_used_units + cost_held_units + %s <= %s"
            params += [units, cost_limit]
        clauses.append(clause + ")")
    return _counters_update(
        assign="tokens_held = tokens_held + %s, cost_held_units = cost_held_units + %s",
        params=[tokens, units],
        period_start=period_start,
        keys=[scope_key for scope_key, _tokens, _units in budgets],
        condition=" OR ".join(clauses),
        more=params,
    )


def budgets_settle(
    *, period_start: datetime, keys: list[str], held_tokens: int, held_units: int, used_tokens: int, used_units: int
) -> int:
    """Move a hold from held to used (used may exceed the hold: recorded, never dropped)."""
    return _counters_update(
        assign="tokens_held = tokens_held - %s, tokens_used = tokens_used + %s, "
        "cost_held_units = cost_held_units - %s, cost_used_units = cost_used_units + %s",
        params=[held_tokens, used_tokens, held_units, used_units],
        period_start=period_start,
        keys=keys,
    )


def counter_read(*, scope_key: str, period_start: datetime) -> tuple[int, int, int, int] | None:
    """A budget's (tokens used, tokens held, money used, money held) in units; None: no
    row yet (nothing counted this period)."""
    sql = (
        f"SELECT tokens_used, tokens_held, cost_used_units, cost_held_units FROM {UsageCounter._meta.db_table} "
        "WHERE scope_key = %s AND period_start = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [scope_key, _when(period_start)])
        return cursor.fetchone()


def hold_claim(*, request_id: str, settled_at: datetime, status: str = Hold.Status.SETTLED) -> Hold | None:
    """Mark an active hold settled (or `status`) and return it, in one statement (UPDATE ...
    RETURNING, SQLite 3.35+ and PostgreSQL). None when it was already settled, expired or
    released: only the first settle (or expiry, or release) gets to write."""
    claimed = plainsql.update(
        Hold, {"request_id": request_id, "status": Hold.Status.ACTIVE}, status=status, settled_at=settled_at
    )
    return claimed[0] if claimed else None


def rollup_rebuild_postgresql(*, start: datetime, until: datetime, tz: str) -> dict[str, int]:
    """PostgreSQL: the whole rebuild as INSERT ... SELECT, no rows through Python. Hours come
    from the ledger, days from the hours (buckets in the school's time zone)."""
    from .models import LedgerEntry, UsageRollup

    rollup, ledger = UsageRollup._meta.db_table, LedgerEntry._meta.db_table
    columns = "granularity, bucket_start, user_id, classroom_id, model_id, requests, prompt_tokens, completion_tokens, cost_billing"
    written = {}
    # One rebuild at a time, both granularities in one transaction: two at once (beat and a
    # manual rollup_usage, a redelivered task) each deleted only the rows committed when
    # its DELETE began, so both inserts stayed and the buckets counted twice.
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('webchat.usage_rollup'))")
        cursor.execute(
            f"DELETE FROM {rollup} WHERE granularity = 'hour' AND bucket_start >= %s AND bucket_start < %s",
            [start, until],
        )
        cursor.execute(
            f"INSERT INTO {rollup} ({columns}) "
            f"SELECT 'hour', date_trunc('hour', created_at AT TIME ZONE %s) AT TIME ZONE %s, user_id, classroom_id, "
            f"model_id, count(*) FILTER (WHERE kind = 'charge'), sum(prompt_tokens), sum(completion_tokens), "
            f"sum(cost_billing) FROM {ledger} WHERE created_at >= %s AND created_at < %s GROUP BY 2, 3, 4, 5",
            [tz, tz, start, until],
        )
        written["hour"] = cursor.rowcount
        cursor.execute(
            f"DELETE FROM {rollup} WHERE granularity = 'day' AND bucket_start >= %s AND bucket_start < %s",
            [start, until],
        )
        cursor.execute(
            f"INSERT INTO {rollup} ({columns}) "
            f"SELECT 'day', date_trunc('day', bucket_start AT TIME ZONE %s) AT TIME ZONE %s, user_id, classroom_id, "
            f"model_id, sum(requests), sum(prompt_tokens), sum(completion_tokens), sum(cost_billing) "
            f"FROM {rollup} WHERE granularity = 'hour' AND bucket_start >= %s AND bucket_start < %s "
            f"GROUP BY 2, 3, 4, 5",
            [tz, tz, start, until],
        )
        written["day"] = cursor.rowcount
    return written
