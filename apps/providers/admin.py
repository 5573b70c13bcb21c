from __future__ import annotations

from django.contrib import admin

from .models import ChatModel, ModelPrice, Provider


class ChatModelInline(admin.TabularInline):
    model = ChatModel
    extra = 0
    fields = ("name", "display_name", "context_window", "max_output_tokens", "enabled")


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("slug", "name_en", "name_zh", "base_url", "auth_style", "is_demo", "enabled", "sort_order")
    list_filter = ("enabled", "auth_style", "is_demo")
    search_fields = ("slug", "name_en", "name_zh")
    inlines = [ChatModelInline]


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    extra = 0


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = ("name", "provider", "display_name", "context_window", "max_output_tokens", "enabled")
    list_filter = ("provider", "enabled")
    search_fields = ("name", "display_name", "provider__slug")
    inlines = [ModelPriceInline]
