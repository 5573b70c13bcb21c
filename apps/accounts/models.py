from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    class Role(models.TextChoices):
        STUDENT = "student", _("Student")
        TEACHER = "teacher", _("Teacher")
        ADMIN = "admin", _("Admin")

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.STUDENT)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_student(self) -> bool:
        return self.role == self.Role.STUDENT

    @property
    def is_teacher(self) -> bool:
        return self.role == self.Role.TEACHER


class Classroom(models.Model):
    name = models.CharField(_("name"), max_length=150)
    teachers = models.ManyToManyField(User, related_name="taught_classrooms", verbose_name=_("teachers"))
    students = models.ManyToManyField(
        User, through="Enrollment", related_name="classrooms", verbose_name=_("students")
    )
    allow_student_keys = models.BooleanField(
        _("students may use their own keys"), default=False,
        help_text=_("Students may add a personal API key, used before the class key."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Enrollment(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="enrollments")
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments")
    joined_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = [
            models.UniqueConstraint(fields=["classroom", "student"], name="enrollment_unique_student_per_class")
        ]

    def __str__(self) -> str:
        return f"{self.student} @ {self.classroom}"
