"""Periodic billing work. Tasks take plain values, call a service, and are safe to run
twice (rollups rebuild their buckets; expiry claims each hold with a conditional UPDATE;
the balance check only reads, and records each run)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone

from .services import holds_expire, job_run_record, ledger_balance_check, usage_rollup


@shared_task(name="billing.rollup_usage", acks_late=True)
def rollup_usage(since: str | None = None) -> dict[str, int]:
    """Rebuild rollups from `since` (ISO time; default: the start of yesterday, so late
    rows near midnight are always caught)."""
    start = datetime.fromisoformat(since) if since else timezone.now() - timedelta(days=1)
    return usage_rollup(since=start)


@shared_task(name="billing.expire_holds", acks_late=True)
def expire_holds() -> int:
    """Settle holds of requests that died, and label their replies."""
    from apps.conversations.services import turns_expire_stale

    started = time.monotonic()
    count = turns_expire_stale() + holds_expire()
    job_run_record(name="expire_holds", duration_ms=int((time.monotonic() - started) * 1000), detail=f"{count} settled")
    return count


@shared_task(name="billing.check_ledger_balance", acks_late=True)
def check_ledger_balance() -> int:
    """Set the usage counters and rollups against the ledger; the differences go to admin,
    /healthz and the log. Returns how many were found."""
    return ledger_balance_check().difference_count
