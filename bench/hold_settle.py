"""How much hold + settle add to one request (issue: at most 5 ms at p50).

    .venv/bin/python bench/hold_settle.py [--requests 2000]
    DATABASE_URL=postgres://... .venv/bin/python bench/hold_settle.py

Each request takes a hold (rate window + student budget + class pool, three conditional
UPDATEs and the hold row, in one transaction) and settles it (ledger row + counters), the
way the pipeline does around every call.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from _setup import django_up, percentile


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    database = django_up()

    from decimal import Decimal

    from apps.accounts.models import User
    from apps.accounts.services import classroom_get_or_create, enrollment_add, user_upsert
    from apps.billing.models import QuotaPolicy
    from apps.billing.services import ReplyUsage, hold_settle, hold_take
    from apps.providers.models import ChatModel

    teacher, _ = user_upsert(username=f"bench-t-{uuid.uuid4().hex[:6]}", role=User.Role.TEACHER)
    student, _ = user_upsert(username=f"bench-s-{uuid.uuid4().hex[:6]}", role=User.Role.STUDENT)
    classroom, _ = classroom_get_or_create(name="bench", teacher=teacher)
    enrollment_add(classroom=classroom, student=student)
    QuotaPolicy.objects.update_or_create(
        classroom=classroom,
        defaults={
            "period": "month",
            "student_token_limit": 10**12,
            "student_cost_limit": Decimal(10**6),
            "class_token_pool": 10**13,
            "rpm": 10**6,
            "tpm": 10**9,
        },
    )
    model = ChatModel.objects.select_related("provider").get(provider__slug="deepseek", name="deepseek-chat")
    usage = ReplyUsage(
        prompt_tokens=812,
        completion_tokens=301,
        usage_source="provider",
        estimated=False,
        status="complete",
        route_name=model.route_name,
        provider_slug="deepseek",
        credential_id=None,
        credential_scope="site",
        first_chunk_ms=400,
        total_ms=3000,
    )

    hold_ms, settle_ms, both_ms = [], [], []
    for _ in range(args.requests):
        request_id = uuid.uuid4().hex
        t0 = time.perf_counter()
        hold_take(
            request_id=request_id, user=student, classroom=classroom, model=model, prompt_tokens=812, max_tokens=1024
        )
        t1 = time.perf_counter()
        hold_settle(request_id=request_id, usage=usage)
        t2 = time.perf_counter()
        hold_ms.append((t1 - t0) * 1000)
        settle_ms.append((t2 - t1) * 1000)
        both_ms.append((t2 - t0) * 1000)

    from apps.billing.models import LedgerEntry, UsageCounter

    counter = UsageCounter.objects.get(scope_key=f"c{classroom.pk}:s{student.pk}")
    expected = args.requests * (usage.prompt_tokens + usage.completion_tokens)
    assert (counter.tokens_used, counter.tokens_held) == (expected, 0), (counter.tokens_used, counter.tokens_held)
    assert LedgerEntry.objects.filter(user=student).count() == args.requests
    print(f"database: {database}; requests: {args.requests} (ledger rows and counters checked)")
    for name, values in (("hold", hold_ms), ("settle", settle_ms), ("hold+settle", both_ms)):
        print(
            f"{name:<12} p50 {percentile(values, 0.5):6.2f} ms   p95 {percentile(values, 0.95):6.2f} ms   "
            f"mean {statistics.fmean(values):6.2f} ms"
        )


if __name__ == "__main__":
    main()
