"""Periodic billing work. Tasks take plain values, call a service, and are safe to run
twice (rollups rebuild their buckets; the balance check only reads, and records each run)."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone

from .services import ledger_balance_check, usage_rollup


@shared_task(name="billing.rollup_usage", acks_late=True)
def rollup_usage(since: str | None = None) -> dict[str, int]:
    """Rebuild rollups from `since` (ISO time; default: the start of yesterday, so late
    rows near midnight are always caught)."""
    start = datetime.fromisoformat(since) if since else timezone.now() - timedelta(days=1)
    return usage_rollup(since=start)


# Expiring the holds of requests that died is conversations.tasks.expire_holds: it labels
# their replies first, and billing sits below conversations.


@shared_task(name="billing.check_ledger_balance", acks_late=True)
def check_ledger_balance() -> int:
    """Set the usage counters and rollups against the ledger; the differences go to admin,
    /healthz and the log. Returns how many were found."""
    return ledger_balance_check().difference_count
