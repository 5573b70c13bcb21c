from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SchoolUserManager(UserManager["User"]):
    def create_superuser(
        self, username: str, email: str | None = None, password: str | None = None, **extra_fields: object
    ) -> User:
        # `createsuperuser` makes the site's admin: give them the admin role too.
        extra_fields.setdefault("role", User.Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    class Role(models.TextChoices):
        STUDENT = "student", _("Student")
        TEACHER = "teacher", _("Teacher")
        ADMIN = "admin", _("Admin")

    class Theme(models.TextChoices):
        SYSTEM = "system", _("As the system")
        LIGHT = "light", _("Light")
        DARK = "dark", _("Dark")

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.STUDENT)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    # The colour theme picked with the header's toggle: kept on the account so it follows the
    # person to another browser (localStorage is only the cache that paints before the page loads).
    theme = models.CharField(_("theme"), max_length=8, choices=Theme.choices, default=Theme.SYSTEM)

    objects = SchoolUserManager()

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

    @property
    def may_teach(self) -> bool:
        """Teacher pages and powers are open to this account: a teacher or an admin. Links
        to classes stay on an account an admin makes a student, but give it nothing."""
        return self.is_superuser or self.role in (self.Role.TEACHER, self.Role.ADMIN)


class Classroom(models.Model):
    name = models.CharField(_("name"), max_length=150)
    teachers = models.ManyToManyField(User, related_name="taught_classrooms", verbose_name=_("teachers"))
    students = models.ManyToManyField(User, through="Enrollment", related_name="classrooms", verbose_name=_("students"))
    archived = models.BooleanField(_("archived"), default=False)
    join_code = models.CharField(_("join code"), max_length=16, blank=True, db_index=True)
    join_code_expires_at = models.DateTimeField(_("join code expires"), null=True, blank=True)

    # Which models the class may use is providers.ClassModelAccess (accounts sits below
    # providers and does not point at its tables).
    system_prompt = models.TextField(
        _("class instructions"),
        blank=True,
        max_length=4000,
        help_text=_("Sent first in every conversation; students see it."),
    )
    max_reply_tokens = models.PositiveIntegerField(_("max reply length (tokens)"), null=True, blank=True)
    teacher_can_read = models.BooleanField(
        _("teachers may read students' conversations"),
        default=False,
        help_text=_("Students see this setting. Every read is recorded."),
    )
    allow_student_keys = models.BooleanField(
        _("students may use their own keys"),
        default=False,
        help_text=_("Students may add a personal API key, used before the class key."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def join_code_expired(self) -> bool:
        """The class has a code, but its time is past: it lets no one in."""
        return bool(self.join_code and self.join_code_expires_at and self.join_code_expires_at <= timezone.now())


class Enrollment(models.Model):
    classroom = models.ForeignKey(
        Classroom, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("class")
    )
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("student"))
    joined_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        constraints = [
            models.UniqueConstraint(fields=["classroom", "student"], name="enrollment_unique_student_per_class")
        ]

    def __str__(self) -> str:
        return f"{self.student} @ {self.classroom}"


class AuditEvent(models.Model):
    """Something a teacher or admin did that students are owed a record of."""

    class Action(models.TextChoices):
        READ_CONVERSATION = "read_conversation", _("Read a student's conversation")
        RESET_PASSWORDS = "reset_passwords", _("Reset students' passwords")
        REMOVE_STUDENT = "remove_student", _("Removed a student from the class")
        IMPORT_ROSTER = "import_roster", _("Imported a roster")
        ADD_TEACHER = "add_teacher", _("Added a co-teacher")
        UNLOCK_LOGIN = "unlock_login", _("Cleared a login lockout")
        API_ACCESS_ON = "api_access_on", _("Switched the class's API access on")
        API_ACCESS_OFF = "api_access_off", _("Switched the class's API access off")
        REVOKE_API_KEY = "revoke_api_key", _("Revoked a student's API key")

    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="audit_events", verbose_name=_("who"))
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    classroom = models.ForeignKey(
        Classroom, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("class")
    )
    subject = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("student")
    )
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at"]
