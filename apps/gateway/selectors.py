"""Reads for personal API keys: who a presented key belongs to, a user's keys, a class's
keys and its API switch."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, Enrollment, User
from apps.accounts.selectors import classroom_students, student_accounts
from webchat.errors import ErrorCode, RequestRefused
from webchat.plainsql import column, instances, table, when

from .models import ApiKey, ClassApiAccess
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


def _key_holder_sql() -> str:
    """The user a key hash belongs to, with what decides whether the key may be used now:
    the key (id, hash), `usable` (neither revoked nor expired), `class_api_off` (the user's
    class switched the API off) and `use_unrecorded` (last_used_at older than
    LAST_USED_PRECISION). Every /v1 request asks: plain SQL (webchat/plainsql.py). The
    class is the one accounts.selectors.classroom_for_student picks (the newest enrollment
    in a class that is not archived); tests/gateway/test_pages.py holds the two to the same
    answer."""
    current_classroom = (
        f"SELECT {column(Enrollment, 'classroom')} FROM {table(Enrollment)} JOIN {table(Classroom)} "
        f"ON {column(Enrollment, 'classroom')} = {column(Classroom, 'id')} "
        f"WHERE {column(Enrollment, 'student')} = {column(ApiKey, 'user')} AND {column(Classroom, 'archived')} = %s "
        f"ORDER BY {column(Enrollment, 'joined_at')} DESC, {column(Enrollment, 'id')} DESC LIMIT 1"
    )
    return (
        f"SELECT {table(User)}.*, {column(ApiKey, 'id')} AS key_id, {column(ApiKey, 'key_hash')} AS key_hash, "
        f"({column(ApiKey, 'revoked_at')} IS NULL AND ({column(ApiKey, 'expires_at')} IS NULL "
        f"OR {column(ApiKey, 'expires_at')} > %s)) AS usable, "
        f"EXISTS (SELECT 1 FROM {table(ClassApiAccess)} WHERE {column(ClassApiAccess, 'enabled')} = %s "
        f"AND {column(ClassApiAccess, 'classroom')} = ({current_classroom})) AS class_api_off, "
        f"({column(ApiKey, 'last_used_at')} IS NULL OR {column(ApiKey, 'last_used_at')} <= %s) AS use_unrecorded "
        f"FROM {table(ApiKey)} JOIN {table(User)} ON {column(User, 'id')} = {column(ApiKey, 'user')} "
        f"WHERE {column(ApiKey, 'key_hash')} = %s"
    )


def api_key_user(*, presented: str | None) -> User:
    """The active user the presented key belongs to (the /v1 entry point's `identify`).
    Raises RequestRefused(invalid_api_key) for a missing, unknown, revoked or expired key or
    an inactive user, and RequestRefused(api_access_off) when the user's class switched the
    API off. One query (the key, its user and the class's switch together); side effects:
    last_used_at, at most once a minute per key."""
    if not presented or len(presented) > MAX_KEY_CHARS or not presented.startswith(KEY_PREFIX):
        raise _refused()
    digest = api_key_hash(key=presented)
    now = timezone.now()
    found = instances(User, _key_holder_sql(), [when(now), False, False, when(now - LAST_USED_PRECISION), digest])
    user = found[0] if found else None
    # The lookup is by hash (an index); comparing the hashes again in constant time keeps a
    # timing difference from telling anything even if the database compared them in a leaky way.
    if user is None or not hmac.compare_digest(user.key_hash, digest):
        raise _refused()
    if not user.usable or not user.is_active:
        raise _refused()
    # Only a valid key learns about its class: an unknown one is told nothing more.
    if user.class_api_off:
        raise RequestRefused(
            ErrorCode.API_ACCESS_OFF, _("API access is switched off for your class. Ask your teacher.")
        )
    if user.use_unrecorded:
        ApiKey.objects.filter(pk=user.key_id).update(last_used_at=now)
    return user


def api_keys_of_user(*, user: User) -> QuerySet[ApiKey]:
    """The user's own keys, newest first, revoked and expired ones included."""
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def api_keys_active_of_user(*, user: User) -> list[ApiKey]:
    """The user's keys that work now (neither revoked nor expired)."""
    return [key for key in api_keys_of_user(user=user).filter(revoked_at__isnull=True) if key.status == "active"]


def api_key_get_for_user(*, user: User, key_id: int) -> ApiKey:
    """One of the user's own keys; 404 for anyone else's."""
    key = api_keys_of_user(user=user).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key


def class_api_enabled(*, classroom: Classroom | None) -> bool:
    """May the class's students use the /v1 API: yes unless a teacher switched it off (and
    yes for someone in no class)."""
    if classroom is None:
        return True
    return not ClassApiAccess.objects.filter(classroom=classroom, enabled=False).exists()


def class_api_keys(*, classroom: Classroom) -> QuerySet[ApiKey]:
    """Every key of the students enrolled in the class, by student, newest first. Not a
    teacher's or admin's key, even if their account is enrolled: teachers manage students."""
    return (
        ApiKey.objects.filter(user__in=classroom_students(classroom=classroom).filter(pk__in=student_accounts()))
        .select_related("user")
        .order_by("user__username", "-created_at", "-id")
    )


def class_api_key_get(*, classroom: Classroom, key_id: int) -> ApiKey:
    """A key of a student enrolled in the class; 404 for any other key."""
    key = class_api_keys(classroom=classroom).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such key.")
    return key
