"""Reads for people and classes."""
from __future__ import annotations

from datetime import timedelta

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import Http404
from django.utils import timezone

from .models import Classroom, User


def classroom_for_student(*, user: User) -> Classroom | None:
    """The class a student's new conversations belong to: the one joined most recently."""
    enrollment = (user.enrollments.select_related("classroom").filter(classroom__archived=False)
                  .order_by("-joined_at", "-id").first())
    return enrollment.classroom if enrollment else None


def classrooms_for_teacher(*, user: User) -> QuerySet[Classroom]:
    """Classes a teacher teaches (all of them, for an admin)."""
    classrooms = Classroom.objects.all() if user.is_superuser else Classroom.objects.filter(teachers=user)
    return classrooms.order_by("name").distinct()


def classroom_get_for_teacher(*, user: User, classroom_id: int) -> Classroom:
    """One of the teacher's classes; 404 for anyone else's."""
    classroom = classrooms_for_teacher(user=user).filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404("No such class.")
    return classroom


def students_manageable_by(*, user: User) -> QuerySet[User]:
    """Accounts whose password and display name `user` may change from the teacher pages:
    students enrolled in a class they teach (every student, for an admin). A teacher's,
    staff or admin account never, even if someone enrolled it in a class."""
    students = User.objects.filter(role=User.Role.STUDENT, is_staff=False, is_superuser=False)
    if user.is_superuser:
        return students
    return students.filter(enrollments__classroom__teachers=user).distinct()


def users_by_folded_username(*, usernames: list[str]) -> dict[str, list[User]]:
    """Existing accounts for these usernames, compared without case as sign-up does
    (`Student4` names the account `student4`). Keyed by the lower-cased username; a list,
    because accounts made before that rule may differ only by case."""
    folded = {name.lower() for name in usernames}
    found: dict[str, list[User]] = {}
    for user in User.objects.annotate(username_folded=Lower("username")).filter(username_folded__in=folded):
        found.setdefault(user.username.lower(), []).append(user)
    return found


def usernames_locked_out(*, usernames: list[str]) -> set[str]:
    """Which of these accounts django-axes refuses to log in right now (from at least one
    address). Reads axes' AccessAttempt rows, so it assumes the database handler (the
    default, and the one settings use); a lock is AXES_FAILURE_LIMIT failures within the
    cool-off time, as axes counts them."""
    attempts = AccessAttempt.objects.filter(username__in=usernames,
                                            failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
    cool_off: timedelta | None = get_cool_off()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return set(attempts.values_list("username", flat=True))


def classroom_allowed_model_ids(*, classroom: Classroom | None) -> set[int] | None:
    """The ids of the models a class allows; None when it allows every enabled model."""
    if classroom is None:
        return None
    return set(classroom.allowed_models.values_list("pk", flat=True)) or None


def classroom_allows_model(*, classroom: Classroom | None, model: object) -> bool:
    allowed = classroom_allowed_model_ids(classroom=classroom)
    return allowed is None or getattr(model, "pk", None) in allowed
