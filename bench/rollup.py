"""Rolling up a big ledger (issue: 1,000,000 rows in at most 30 s on PostgreSQL).

    DATABASE_URL=postgres://... .venv/bin/python bench/rollup.py [--rows 1000000]

Fills the ledger with rows spread over 30 days, 200 students, 4 classes and 6 models (by
one INSERT ... SELECT on PostgreSQL, bulk inserts elsewhere), then times usage_rollup over
the whole range, twice (the second run replaces the first's rows).
"""

from __future__ import annotations

import argparse
import time
import uuid

from _setup import django_up


def fill_postgres(rows: int, users: list[int], classrooms: list[int], models: list[int], start: object) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_ledgerentry (request_id, kind, note, user_id, classroom_id, credential_id,
                credential_scope, provider_slug, model_id, route_name, prompt_tokens, completion_tokens,
                usage_source, estimated, status, price_input_per_million, price_output_per_million, price_currency,
                cost, exchange_rate, billing_currency, cost_billing, first_chunk_ms, total_ms, entry_point,
                started_at, created_at)
            SELECT 'bench-' || g, 'charge', '', (%(users)s::bigint[])[1 + g %% %(nu)s],
                (%(classes)s::bigint[])[1 + (g %% %(nu)s) %% %(nc)s], NULL, 'site', 'bench',
                (%(models)s::bigint[])[1 + g %% %(nm)s], 'bench/model', 200 + g %% 700, 50 + g %% 400,
                'provider', false, 'complete', 2, 8, 'CNY', (200 + g %% 700) * 2e-6 + (50 + g %% 400) * 8e-6, 1,
                'CNY', (200 + g %% 700) * 2e-6 + (50 + g %% 400) * 8e-6, 300, 2000, 'chat',
                %(start)s + (g * interval '2.592 seconds'), %(start)s + (g * interval '2.592 seconds')
            FROM generate_series(1, %(rows)s) AS g
        """,
            {
                "users": users,
                "nu": len(users),
                "classes": classrooms,
                "nc": len(classrooms),
                "models": models,
                "nm": len(models),
                "start": start,
                "rows": rows,
            },
        )


def fill_generic(rows: int, users: list[int], classrooms: list[int], models: list[int], start: object) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from apps.billing.models import LedgerEntry

    step = timedelta(days=30) / rows
    batch = []
    for g in range(rows):
        prompt, completion = 200 + g % 700, 50 + g % 400
        cost = Decimal(prompt) * Decimal("0.000002") + Decimal(completion) * Decimal("0.000008")
        at = start + g * step  # type: ignore[operator]
        batch.append(
            LedgerEntry(
                request_id=f"bench-{g}",
                user_id=users[g % len(users)],
                classroom_id=classrooms[(g % len(users)) % len(classrooms)],
                credential_scope="site",
                provider_slug="bench",
                model_id=models[g % len(models)],
                route_name="bench/model",
                prompt_tokens=prompt,
                completion_tokens=completion,
                usage_source="provider",
                status="complete",
                price_input_per_million=2,
                price_output_per_million=8,
                price_currency="CNY",
                cost=cost,
                exchange_rate=1,
                billing_currency="CNY",
                cost_billing=cost,
                entry_point="chat",
                started_at=at,
                created_at=at,
            )
        )
        if len(batch) == 5000:
            LedgerEntry.objects.bulk_create(batch)
            batch = []
    LedgerEntry.objects.bulk_create(batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    database = django_up()

    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.accounts.services import classroom_get_or_create, enrollment_add, user_upsert
    from apps.billing.models import LedgerEntry, UsageRollup
    from apps.billing.services import usage_rollup
    from apps.providers.models import ChatModel

    tag = uuid.uuid4().hex[:6]
    teacher, _ = user_upsert(username=f"bench-t-{tag}", role=User.Role.TEACHER)
    classrooms = [classroom_get_or_create(name=f"bench {tag} {i}", teacher=teacher)[0] for i in range(4)]
    users = []
    for i in range(200):
        student, _ = user_upsert(username=f"bench-{tag}-{i}", role=User.Role.STUDENT)
        enrollment_add(classroom=classrooms[i % 4], student=student)
        users.append(student.pk)
    models = list(ChatModel.objects.values_list("pk", flat=True)[:6])
    start = timezone.now() - timedelta(days=30)
    LedgerEntry.objects.filter(provider_slug="bench").delete()

    t0 = time.perf_counter()
    filler = fill_postgres if connection.vendor == "postgresql" else fill_generic
    filler(args.rows, users, [c.pk for c in classrooms], models, start)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_ledgerentry")
    print(
        f"database: {database}; ledger rows: {LedgerEntry.objects.count()} (filled in {time.perf_counter() - t0:.1f} s)"
    )

    for attempt in (1, 2):
        t0 = time.perf_counter()
        written = usage_rollup(since=start - timedelta(days=1))
        elapsed = time.perf_counter() - t0
        print(f"rollup run {attempt}: {elapsed:.2f} s -> {written['hour']} hourly rows, {written['day']} daily rows")
    print(f"rollup rows now: {UsageRollup.objects.count()}")


if __name__ == "__main__":
    main()
