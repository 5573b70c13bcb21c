"""Reads for personal API keys: who a presented key belongs to."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User
from webchat.errors import ErrorCode, RequestRefused

from .models import ApiKey
from .services import KEY_PREFIX, api_key_hash

# last_used_at is written at most this often per key: not one UPDATE per request.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_KEY_CHARS = 200


def _refused() -> RequestRefused:
    # One message for every reason (missing, unknown, revoked, expired): a caller learns
    # nothing about which keys exist.
    return RequestRefused(
        ErrorCode.INVALID_API_KEY, _("Incorrect API key provided, or the key was revoked or expired.")
    )


def api_key_user(*, presented: str | None) -> User:
    """The active user the presented key belongs to (the /v1 entry point's `identify`).
    Raises RequestRefused(invalid_api_key) for a missing, unknown, revoked or expired key or
    an inactive user. Side effects: last_used_at, at most once a minute per key."""
    if not presented or len(presented) > MAX_KEY_CHARS or not presented.startswith(KEY_PREFIX):
        raise _refused()
    digest = api_key_hash(key=presented)
    key = ApiKey.objects.select_related("user").filter(key_hash=digest).first()
    # The lookup is by hash (an index); comparing the hashes again in constant time keeps a
    # timing difference from telling anything even if the database compared them in a leaky way.
    if key is None or not hmac.compare_digest(key.key_hash, digest):
        raise _refused()
    now = timezone.now()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now) or not key.user.is_active:
        raise _refused()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user
