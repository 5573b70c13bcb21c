"""Periodic gateway work: safe to run twice."""

from __future__ import annotations

from celery import shared_task

from .idempotency import idempotent_requests_expire


@shared_task(name="gateway.expire_idempotent_requests", acks_late=True)
def expire_idempotent_requests() -> int:
    """Drop the results kept for Idempotency-Key retries once their day is over."""
    return idempotent_requests_expire()
