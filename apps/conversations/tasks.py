"""Periodic conversation work. Safe to run twice: each stale reply and each hold is claimed
with a conditional UPDATE, so a second run finds nothing left to do."""

from __future__ import annotations

import time

from celery import shared_task

from apps.billing.services import holds_expire, job_run_record

from .services import turns_expire_stale


@shared_task(name="conversations.expire_holds", acks_late=True)
def expire_holds() -> int:
    """Settle the holds of requests that died, and label their replies.

    Here and not in billing because it starts from the replies: billing sits below
    conversations and knows nothing of them. The replies go first, so each gets its
    `worker_lost` label with its hold settled; holds_expire then settles what is left
    (holds whose reply row was never written). Side effects: those Message, Hold and
    LedgerEntry rows, and the `expire_holds` JobRun."""
    started = time.monotonic()
    count = turns_expire_stale() + holds_expire()
    job_run_record(name="expire_holds", duration_ms=int((time.monotonic() - started) * 1000), detail=f"{count} settled")
    return count
