"""Writes for personal API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.utils import timezone

from apps.accounts.models import User

from .models import ApiKey

KEY_PREFIX = "wc-"
PREFIX_CHARS = 11  # "wc-" and 8 characters of the key: enough to tell keys apart, too few to guess


def api_key_hash(*, key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user: User, name: str = "", expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for `user`. Returns the row and the full key, which is shown this once and
    never stored (only its hash). Side effects: one ApiKey row."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)  # 32 bytes: 256 bits
    row = ApiKey.objects.create(
        user=user, name=name, prefix=key[:PREFIX_CHARS], key_hash=api_key_hash(key=key), expires_at=expires_at
    )
    return row, key


def api_key_revoke(*, key: ApiKey) -> None:
    """Revoke a key; the next request made with it is refused. Revoking twice keeps the first time.
    Side effects: the row's revoked_at."""
    now = timezone.now()
    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
        key.revoked_at = now
