from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = (
        "role",
        "status",
        "content",
        "route_name",
        "prompt_tokens",
        "completion_tokens",
        "usage_review",
        "created_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "classroom", "model", "updated_at")
    list_filter = ("classroom",)
    search_fields = ("title", "owner__username")
    raw_id_fields = ("owner",)
    inlines = [MessageInline]


@admin.register(Message)
class ReplyAdmin(admin.ModelAdmin):
    """Replies, read-only, to find the ones whose usage needs review (the ledger has the
    same filter; a reply whose settling failed has no ledger row, only this)."""

    list_display = (
        "created_at",
        "conversation",
        "route_name",
        "status",
        "error_code",
        "prompt_tokens",
        "completion_tokens",
        "usage_source",
        "usage_review",
        "request_id",
    )
    list_filter = ("usage_review", "status", "usage_source")
    search_fields = ("request_id", "route_name", "conversation__owner__username")
    list_select_related = ("conversation",)
    # The text stays on the conversation's page (a parent's name would show its first words).
    exclude = ("content", "parent")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).filter(role=Message.Role.ASSISTANT)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
