"""Reads for people and classes."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import segno
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import Http404
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from webchat.plainsql import column, instances, table, when

from .models import Classroom, Enrollment, User


def classroom_for_student(*, user: User) -> Classroom | None:
    """The class a student's new conversations belong to: the one joined most recently."""
    # Every turn of a new conversation asks: plain SQL (webchat/plainsql.py).
    joined = (
        f"SELECT {table(Classroom)}.* FROM {table(Classroom)} JOIN {table(Enrollment)} "
        f"ON {column(Enrollment, 'classroom')} = {column(Classroom, 'id')} "
        f"WHERE {column(Enrollment, 'student')} = %s AND {column(Classroom, 'archived')} = %s "
        f"ORDER BY {column(Enrollment, 'joined_at')} DESC, {column(Enrollment, 'id')} DESC LIMIT 1"
    )
    found = instances(Classroom, joined, [user.pk, False])
    return found[0] if found else None


def classroom_for_join_code(*, code: str) -> Classroom | None:
    """The class a join code lets a student into now: case and spaces ignored; None for an
    unknown, expired or emptied code, or an archived class."""
    code = code.strip().upper()
    if not code:
        return None
    classroom = Classroom.objects.filter(join_code=code, archived=False).prefetch_related("teachers").first()
    if classroom is None or (classroom.join_code_expires_at and classroom.join_code_expires_at <= timezone.now()):
        return None
    return classroom


def join_link_qr_svg(*, url: str, title: str) -> str:
    """The join link as a QR code for a projector or a printout: an inline SVG of paths
    (no style attributes, which the CSP would block; segno escapes the title)."""
    return segno.make(url, error="m").svg_inline(
        scale=4, dark="#1f2328", omitsize=True, svgclass="join-qr", title=title
    )


def classroom_get_open_to_student(*, classroom_id: int, student: User) -> Classroom | None:
    """The class, while `student` may still chat in it: it is not archived and they are
    enrolled; else None."""
    # Every turn of a class's conversation asks: plain SQL (webchat/plainsql.py).
    enrolled = (
        f"SELECT {table(Classroom)}.* FROM {table(Classroom)} JOIN {table(Enrollment)} "
        f"ON {column(Enrollment, 'classroom')} = {column(Classroom, 'id')} "
        f"WHERE {column(Classroom, 'id')} = %s AND {column(Enrollment, 'student')} = %s "
        f"AND {column(Classroom, 'archived')} = %s"
    )
    found = instances(Classroom, enrolled, [classroom_id, student.pk, False])
    return found[0] if found else None


def session_user_get(*, session_key: str | None) -> User | None:
    """The active user this session still signs in, read afresh from the session store.

    None when the session is gone (logged out, expired, flushed), when its password hash no
    longer matches the account's (the password was changed or reset since), or when the
    account was deactivated or deleted. Decides as django.contrib.auth.get_user does, but
    never writes: get_user flushes or re-keys a session it doubts, and a websocket cannot
    hand the browser a new cookie. Two queries (session, user).
    """
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user_id = User._meta.pk.to_python(store[SESSION_KEY])
        backend_path = store[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not user.is_active:
        return None
    session_hash = store.get(HASH_SESSION_KEY) or ""
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not session_hash or not any(constant_time_compare(session_hash, known) for known in hashes):
        return None
    return user


def session_signs_in(*, session_key: str | None, user_id: int, session_hash: str) -> User | None:
    """A socket's check on every turn, in one query: its session row is still there and
    unexpired, the account is still active, and the password is still the one the session
    was signed in with (`session_hash`, read when the socket connected). The same answers
    as session_user_get for a socket that knows its user: a new sign-in or password change
    gives the browser a new session key, so the old row is gone either way. Other session
    engines than the database take session_user_get's two reads."""
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        user = session_user_get(session_key=session_key)
        return user if user is not None and user.pk == user_id else None
    if not session_key or not session_hash:
        return None
    # Every turn asks: plain SQL (webchat/plainsql.py).
    signed_in = (
        f"SELECT {table(User)}.* FROM {table(User)} WHERE {column(User, 'id')} = %s "
        f"AND {column(User, 'is_active')} = %s AND EXISTS (SELECT 1 FROM {table(Session)} "
        f"WHERE {column(Session, 'session_key')} = %s AND {column(Session, 'expire_date')} > %s)"
    )
    found = instances(User, signed_in, [user_id, True, session_key, when(timezone.now())])
    if not found:
        return None
    user = found[0]
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    if not any(constant_time_compare(session_hash, known) for known in hashes):
        return None
    return user


def classrooms_for_teacher(*, user: User) -> QuerySet[Classroom]:
    """Classes a teacher teaches (all of them, for an admin; none for an account that is
    no longer a teacher)."""
    if not user.may_teach:
        return Classroom.objects.none()
    classrooms = Classroom.objects.all() if user.is_superuser else Classroom.objects.filter(teachers=user)
    return classrooms.order_by("name").distinct()


def classroom_get_for_teacher(*, user: User, classroom_id: int) -> Classroom:
    """One of the teacher's classes; 404 for anyone else's."""
    classroom = classrooms_for_teacher(user=user).filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404("No such class.")
    return classroom


# "Is this student in the class": an Enrollment row, whatever the class's state. Every
# check and lookup of a class's students goes through these three.
def classroom_students(*, classroom: Classroom) -> QuerySet[User]:
    """The accounts enrolled in the class."""
    return User.objects.filter(enrollments__classroom=classroom)


def classroom_has_student(*, classroom: Classroom, student: User) -> bool:
    return classroom_students(classroom=classroom).filter(pk=student.pk).exists()


def classroom_student_get(*, classroom: Classroom, student_id: int) -> User:
    """One student of the class; 404 for anyone not enrolled in it."""
    student = classroom_students(classroom=classroom).filter(pk=student_id).first()
    if student is None:
        raise Http404("No such student.")
    return student


def user_may_manage_keys(*, user: User) -> bool:
    """May `user` keep API keys of their own (the keys pages, a personal key): teachers and
    admins always; a student only while one of their classes allows students' own keys.
    The keys pages, the navigation bar and credential_create all ask here."""
    if user.role != User.Role.STUDENT or user.is_superuser:
        return True
    return user.classrooms.filter(allow_student_keys=True).exists()


def student_accounts() -> QuerySet[User]:
    """Accounts that are only students': what teacher pages may act on (passwords, names,
    API keys). A teacher's, staff or admin account never is, even enrolled in a class."""
    return User.objects.filter(role=User.Role.STUDENT, is_staff=False, is_superuser=False)


def students_manageable_by(*, user: User) -> QuerySet[User]:
    """Accounts whose password and display name `user` may change from the teacher pages:
    students enrolled in a class they teach (every student, for an admin). A teacher's,
    staff or admin account never, even if someone enrolled it in a class."""
    students = student_accounts()
    if not user.may_teach:
        return students.none()
    if user.is_superuser:
        return students
    return students.filter(enrollments__classroom__teachers=user).distinct()


def username_fold(username: str) -> str:
    """A username without its case, in every script: Python's casefold, which the database
    side matches (SQLite's lower() is it here, webchat/sqlite/base.py; PostgreSQL's lower()
    agrees but for a few letters, such as ß, which username_taken also checks with iexact)."""
    return username.casefold()


def users_by_folded_username(*, usernames: list[str]) -> dict[str, list[User]]:
    """Existing accounts for these usernames, compared without case as sign-up does
    (`Student4` names the account `student4`). Keyed by the lower-cased username; a list,
    because accounts made before that rule may differ only by case."""
    folded = {username_fold(name) for name in usernames}
    found: dict[str, list[User]] = {}
    for user in User.objects.annotate(username_folded=Lower("username")).filter(username_folded__in=folded):
        found.setdefault(username_fold(user.username), []).append(user)
    return found


def username_taken(*, username: str) -> bool:
    """Whether an account has this username, compared without case in every script
    ("Élodie" is "élodie", "ΟΔΟΣ" is "οδος"), as users_by_folded_username compares, and as
    the database's own iexact does (PostgreSQL's UPPER() folds a few letters that its
    lower() and Python's casefold do not alike)."""
    return User.objects.filter(username__iexact=username).exists() or bool(
        users_by_folded_username(usernames=[username])
    )


def usernames_locked_out(*, usernames: list[str]) -> set[str]:
    """Which of these accounts django-axes refuses to log in right now (from at least one
    address). Reads axes' AccessAttempt rows, so it assumes the database handler (the
    default, and the one settings use); a lock is AXES_FAILURE_LIMIT failures within the
    cool-off time, as axes counts them."""
    attempts = AccessAttempt.objects.filter(
        username__in=usernames, failures_since_start__gte=settings.AXES_FAILURE_LIMIT
    )
    cool_off: timedelta | None = get_cool_off()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return set(attempts.values_list("username", flat=True))
