"""Writes for people and classes."""
from __future__ import annotations

from django.db import transaction

from .models import Classroom, Enrollment, User


def user_upsert(*, username: str, role: str, display_name: str = "", password: str | None = None) -> tuple[User, bool]:
    """Create the user if missing; set the password when given.

    Side effects: one User row created or updated. Returns (user, created).
    """
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"role": role, "display_name": display_name},
    )
    changed: list[str] = []
    if role == User.Role.ADMIN and not (user.is_staff and user.is_superuser):
        user.is_staff = user.is_superuser = True
        changed += ["is_staff", "is_superuser"]
    if password is not None:
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save(update_fields=changed)
    return user, created


@transaction.atomic
def classroom_get_or_create(*, name: str, teacher: User) -> tuple[Classroom, bool]:
    """A class named `name` taught by `teacher`. Side effects: Classroom row, teacher link."""
    classroom = Classroom.objects.filter(name=name, teachers=teacher).first()
    if classroom is not None:
        return classroom, False
    classroom = Classroom.objects.create(name=name)
    classroom.teachers.add(teacher)
    return classroom, True


def enrollment_add(*, classroom: Classroom, student: User) -> Enrollment:
    """Put `student` in `classroom` (no-op when already there). Side effects: Enrollment row."""
    enrollment, _ = Enrollment.objects.get_or_create(classroom=classroom, student=student)
    return enrollment
