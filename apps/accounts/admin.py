from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import AuditEvent, Classroom, Enrollment, User
from .services import lockout_clear


class PasswordSetForm(AdminPasswordChangeForm):
    """Django admin's "change password" form. A password an admin sets ends a login
    lockout, as a teacher's reset does; this save() is the only place the admin's password
    change passes through, so it calls the service here rather than in a signal on every
    password save."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        if commit:
            lockout_clear(user=user)
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "role", "is_active", "last_login", "date_joined")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "display_name", "email")
    fieldsets = DjangoUserAdmin.fieldsets + ((_("School"), {"fields": ("role", "display_name")}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + ((_("School"), {"fields": ("role", "display_name")}),)
    change_password_form = PasswordSetForm
    actions = ["unlock_logins"]

    @admin.action(description=_("Let the selected users log in again (clear lockouts)"))
    def unlock_logins(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset)
        for user in users:
            lockout_clear(user=user)
        self.message_user(request, ngettext("%(count)d user may log in again.",
                                            "%(count)d users may log in again.", len(users)) % {"count": len(users)})


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    autocomplete_fields = ("student",)


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ("name", "join_code", "archived", "teacher_can_read", "allow_student_keys", "default_model",
                    "created_at")
    list_filter = ("archived", "teacher_can_read", "allow_student_keys")
    search_fields = ("name", "join_code", "teachers__username")
    filter_horizontal = ("teachers", "allowed_models")
    inlines = [EnrollmentInline]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the record of what teachers did to students' data."""

    list_display = ("created_at", "actor", "action", "classroom", "subject", "detail")
    list_filter = ("action",)
    search_fields = ("actor__username", "subject__username", "classroom__name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
