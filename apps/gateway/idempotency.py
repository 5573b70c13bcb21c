"""`Idempotency-Key` for /v1 requests: a retried request gets the first one's result.

A client that lost the answer to a request (a dropped connection, a timeout) may send it
again with the same `Idempotency-Key` header and the same body. Within IDEMPOTENCY_WINDOW it
gets the first request's result, and nothing is called or billed a second time:

    claim    the first request with a key records it as running (one row per user and key)
    record   its response (JSON, or the whole SSE stream) once it has one
    forget   a request refused before anything was written: a retry may run afresh

A retry while the first is still running is refused (409), and so is the same key with a
different body (400): the key names one request.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from webchat.errors import ErrorCode, RequestRefused

from .models import IdempotentRequest

IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
# Larger results are not kept (a retry then runs again): 1 MB of reply text is at most a
# few MB as SSE.
MAX_RECORDED_CHARS = 8_000_000


@dataclass(frozen=True)
class Recorded:
    status_code: int
    content_type: str
    body: str


def body_hash(body: bytes) -> str:
    """The request's JSON as its values, not its bytes: the same body written with other
    spacing or key order (another client, a pretty-printed retry) is the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        return hashlib.sha256(body).hexdigest()
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def idempotent_claim(*, user: User, key: str, request_hash: str) -> int | Recorded:
    """Claim `key` for this request: returns the claim's id (go on and serve it), or the
    first request's Recorded result (replay it). Raises RequestRefused: a malformed key
    (bad_request), the key used with another body (bad_request), or the first request still
    running (idempotency_in_progress). Side effects: one IdempotentRequest row; the user's
    row for this key, if older than the window, is deleted first."""
    if not IDEMPOTENCY_KEY.match(key):
        raise RequestRefused(
            ErrorCode.BAD_REQUEST,
            _("The Idempotency-Key header must be 1 to 255 printable characters without spaces."),
        )
    now = timezone.now()
    IdempotentRequest.objects.filter(user=user, key=key, created_at__lt=now - IDEMPOTENCY_WINDOW).delete()
    try:
        with transaction.atomic():
            row = IdempotentRequest.objects.create(user=user, key=key, body_hash=request_hash, created_at=now)
        return row.pk
    except IntegrityError:
        first = IdempotentRequest.objects.filter(user=user, key=key).first()
    if first is None:  # the first one was just forgotten (it was refused): this one may run
        return idempotent_claim(user=user, key=key, request_hash=request_hash)
    if first.body_hash != request_hash:
        raise RequestRefused(
            ErrorCode.BAD_REQUEST,
            _("This Idempotency-Key was already used for a different request. Use a new key for a new request."),
        )
    if first.finished_at is None and first.created_at < now - timedelta(seconds=settings.HOLD_EXPIRY_SECONDS):
        # Claimed by a worker that died before recording anything: its hold has expired by
        # now, and this retry may run.
        IdempotentRequest.objects.filter(pk=first.pk, finished_at__isnull=True).delete()
        return idempotent_claim(user=user, key=key, request_hash=request_hash)
    if first.finished_at is None or first.status_code is None:
        raise RequestRefused(
            ErrorCode.IDEMPOTENCY_IN_PROGRESS,
            _("The first request with this Idempotency-Key is still being answered. Retry when it has finished."),
            retry_after=1,
        )
    return Recorded(status_code=first.status_code, content_type=first.content_type, body=first.body)


def idempotent_record(*, claim_id: int, status_code: int, content_type: str, body: str) -> None:
    """Keep the claimed request's result for retries. A result too large to keep is not:
    the claim is dropped, and a retry runs again. Side effects: the claim's row."""
    if len(body) > MAX_RECORDED_CHARS:
        idempotent_forget(claim_id=claim_id)
        return
    IdempotentRequest.objects.filter(pk=claim_id).update(
        status_code=status_code, content_type=content_type, body=body, finished_at=timezone.now()
    )


def idempotent_forget(*, claim_id: int) -> None:
    """Drop a claim whose request was refused before anything was written or billed."""
    IdempotentRequest.objects.filter(pk=claim_id).delete()


def idempotent_requests_expire(*, now: datetime | None = None) -> int:
    """Delete results older than the window (the periodic task). Returns how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_WINDOW
    deleted, _by_model = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
