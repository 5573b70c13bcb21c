from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import AuditEvent, Classroom, Enrollment, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "role", "is_active", "last_login", "date_joined")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "display_name", "email")
    fieldsets = DjangoUserAdmin.fieldsets + ((_("School"), {"fields": ("role", "display_name")}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + ((_("School"), {"fields": ("role", "display_name")}),)


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
