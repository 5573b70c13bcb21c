"""Reads for people and classes."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

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


def classroom_allowed_model_ids(*, classroom: Classroom | None) -> set[int] | None:
    """The ids of the models a class allows; None when it allows every enabled model."""
    if classroom is None:
        return None
    return set(classroom.allowed_models.values_list("pk", flat=True)) or None


def classroom_allows_model(*, classroom: Classroom | None, model: object) -> bool:
    allowed = classroom_allowed_model_ids(classroom=classroom)
    return allowed is None or getattr(model, "pk", None) in allowed
