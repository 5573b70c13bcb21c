from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import ExchangeRate, JobRun, LedgerEntry, QuotaPolicy, SiteBillingSettings, StudentOverride, UsageRollup
from .selectors import site_billing_settings_forget


class ReadOnlyAdmin(admin.ModelAdmin):
    """The ledger and what is derived from it are never edited by hand: corrections are new
    rows written by the billing service."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "classroom", "route_name", "prompt_tokens", "completion_tokens",
                    "cost_billing", "billing_currency", "status", "usage_source", "usage_review", "credential_scope",
                    "entry_point")
    # "usage to review": rows billed on our count or a bound instead of what the provider said.
    list_filter = ("usage_review", "status", "usage_source", "kind", "entry_point", "provider_slug",
                   "billing_currency")
    search_fields = ("request_id", "user__username", "classroom__name", "route_name")
    date_hierarchy = "created_at"
    list_select_related = ("user", "classroom")


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = ("granularity", "bucket_start", "user", "classroom", "model", "requests", "prompt_tokens",
                    "completion_tokens", "cost_billing")
    list_filter = ("granularity", "classroom")
    search_fields = ("user__username", "classroom__name")
    date_hierarchy = "bucket_start"
    list_select_related = ("user", "classroom", "model")


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "last_success_at", "last_duration_ms", "last_detail")


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("from_currency", "to_currency", "rate", "effective_from")
    list_filter = ("from_currency", "to_currency")


@admin.register(SiteBillingSettings)
class SiteBillingSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "billing_currency", "default_period", "default_student_token_limit",
                    "max_student_token_limit", "max_student_cost_limit")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not SiteBillingSettings.objects.exists()

    def save_model(self, request: HttpRequest, obj: SiteBillingSettings, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        site_billing_settings_forget()  # this process sees the change at once; others within seconds

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class StudentOverrideInline(admin.TabularInline):
    model = StudentOverride
    fk_name = "classroom"
    extra = 0
    raw_id_fields = ("student",)


@admin.register(QuotaPolicy)
class QuotaPolicyAdmin(admin.ModelAdmin):
    list_display = ("classroom", "period", "student_token_limit", "student_cost_limit", "class_token_pool", "rpm",
                    "tpm", "updated_at")
    list_filter = ("period",)
    search_fields = ("classroom__name",)
