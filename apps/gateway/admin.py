from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import ApiKey, ClassApiAccess
from .services import api_key_revoke, class_api_access_set


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are listed and revoked here, never shown: only the prefix is kept readable."""

    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a key is created where it can be shown once (the command, the keys page)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # ?key_hash__startswith=5b listed the key only when the prefix matched: the hash
        # could be read a character at a time.
        return not lookup.startswith("key_hash") and super().lookup_allowed(lookup, value, request)

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)


@admin.register(ClassApiAccess)
class ClassApiAccessAdmin(admin.ModelAdmin):
    """Classes whose API switch a teacher has used (no row: on). Switched here only through
    the service, so every change is audited as on the class's API page."""

    list_display = ("classroom", "enabled", "changed_at", "changed_by")
    list_filter = ("enabled",)
    search_fields = ("classroom__name",)
    fields = list_display
    readonly_fields = fields
    actions = ["switch_on", "switch_off"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a class's teachers switch it on its API page (/classes/<id>/api/)

    def has_delete_permission(self, request: HttpRequest, obj: ClassApiAccess | None = None) -> bool:
        return False

    @admin.action(description=_("Switch API access on for the selected classes"))
    def switch_on(self, request: HttpRequest, queryset: QuerySet[ClassApiAccess]) -> None:
        for access in queryset.select_related("classroom"):
            class_api_access_set(actor=request.user, classroom=access.classroom, enabled=True)

    @admin.action(description=_("Switch API access off for the selected classes"))
    def switch_off(self, request: HttpRequest, queryset: QuerySet[ClassApiAccess]) -> None:
        for access in queryset.select_related("classroom"):
            class_api_access_set(actor=request.user, classroom=access.classroom, enabled=False)
