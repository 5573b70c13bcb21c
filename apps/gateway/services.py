"""Writes for personal API keys and a class's API switch."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import AuditEvent, Classroom, User
from apps.accounts.services import audit_record

from .models import ApiKey, ClassApiAccess

KEY_PREFIX = "wc-"
PREFIX_CHARS = 11  # "wc-" and 8 characters of the key: enough to tell keys apart, too few to guess
# Keys a user may hold at once (neither revoked nor expired): plenty for a laptop, a lab
# machine and a few projects, and a bound on what a leaked session could mint.
ACTIVE_KEYS_PER_USER = 20


def api_key_hash(*, key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, user: User, name: str = "", expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key for `user`. Returns the row and the full key, which is shown this once and
    never stored (only its hash). Raises ValidationError when the user already holds
    ACTIVE_KEYS_PER_USER active keys. Side effects: one ApiKey row."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)  # 32 bytes: 256 bits
    with transaction.atomic():
        # The user's row is locked so two requests at once cannot both pass the count
        # (PostgreSQL; SQLite takes one writer at a time anyway).
        User.objects.select_for_update().filter(pk=user.pk).first()
        now = timezone.now()
        active = ApiKey.objects.filter(user=user, revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
        if active.count() >= ACTIVE_KEYS_PER_USER:
            raise ValidationError(
                _("You already have %(count)d active keys, the most one person may hold. Revoke one you no longer use.")
                % {"count": ACTIVE_KEYS_PER_USER}
            )
        row = ApiKey.objects.create(
            user=user, name=name, prefix=key[:PREFIX_CHARS], key_hash=api_key_hash(key=key), expires_at=expires_at
        )
    return row, key


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke a key; the next request made with it is refused. Revoking twice keeps the first
    time. Returns whether this call revoked it. Side effects: the row's revoked_at."""
    now = timezone.now()
    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
        key.revoked_at = now
        return True
    return False


def api_keys_revoke_for_new_password(*, users: list[User]) -> int:
    """Someone else set these users' passwords (accounts.signals.passwords_set_by_another):
    their keys still in use are revoked, as their sessions ended. Returns how many.
    Side effects: those rows' revoked_at."""
    return ApiKey.objects.filter(user__in=users, revoked_at__isnull=True).update(revoked_at=timezone.now())


def class_api_key_revoke(*, actor: User, classroom: Classroom, key: ApiKey) -> bool:
    """A teacher revokes a key of a student in their class (the caller found `key` through
    class_api_key_get, which keeps it to the class). Returns whether this call revoked it.
    Side effects: the row's revoked_at, and an AuditEvent when it was revoked now."""
    with transaction.atomic():
        revoked = api_key_revoke(key=key)
        if revoked:
            audit_record(
                actor=actor,
                action=AuditEvent.Action.REVOKE_API_KEY,
                classroom=classroom,
                subject=key.user,
                detail=f"{key.prefix}… {key.name}",
            )
    return revoked


def class_api_access_set(*, actor: User, classroom: Classroom, enabled: bool) -> bool:
    """Switch the /v1 API on or off for the class's students; their next request sees it.
    Returns whether the setting changed. Side effects: the ClassApiAccess row, and an
    AuditEvent when the setting changed."""
    with transaction.atomic():
        access, _created = ClassApiAccess.objects.select_for_update().get_or_create(classroom=classroom)
        if access.enabled == enabled:
            return False
        access.enabled = enabled
        access.changed_by = actor
        access.save(update_fields=["enabled", "changed_by", "changed_at"])
        audit_record(
            actor=actor,
            action=AuditEvent.Action.API_ACCESS_ON if enabled else AuditEvent.Action.API_ACCESS_OFF,
            classroom=classroom,
        )
    return True
