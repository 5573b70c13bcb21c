from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webchat.forms import form_add_service_errors

from .models import (
    BalanceCheck,
    ExchangeRate,
    JobRun,
    LedgerEntry,
    QuotaPolicy,
    SiteBillingSettings,
    UsageRollup,
)
from .selectors import balance_check_latest
from .services import quota_policy_delete, quota_policy_set, quota_policy_validate, site_billing_settings_save
from .templatetags.ledger_balance import balance_warning


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
    list_display = (
        "created_at",
        "user",
        "classroom",
        "route_name",
        "prompt_tokens",
        "completion_tokens",
        "cost_billing",
        "billing_currency",
        "status",
        "usage_source",
        "usage_review",
        "credential_scope",
        "entry_point",
    )
    # "usage to review": rows billed on our count or a bound instead of what the provider said.
    list_filter = ("usage_review", "status", "usage_source", "kind", "entry_point", "provider_slug", "billing_currency")
    search_fields = ("request_id", "user__username", "classroom__name", "route_name")
    date_hierarchy = "created_at"
    list_select_related = ("user", "classroom")


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "granularity",
        "bucket_start",
        "user",
        "classroom",
        "model",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cost_billing",
    )
    list_filter = ("granularity", "classroom")
    search_fields = ("user__username", "classroom__name")
    date_hierarchy = "bucket_start"
    list_select_related = ("user", "classroom", "model")


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "last_success_at", "last_duration_ms", "last_detail")


def _differences_html(check: BalanceCheck, *, limit: int | None = None) -> SafeString:
    shown = check.differences[:limit]
    items = format_html_join(
        "",
        "<li>{} <code>{}</code> {}: {} {} ({} {})</li>",
        ((d["where"], d["budget"], d["field"], _("found"), d["found"], _("ledger"), d["ledger"]) for d in shown),
    )
    more = check.difference_count - len(shown)
    tail = format_html("<li>{}</li>", _("… and %(count)d more") % {"count": more}) if more > 0 else ""
    return format_html("<ul>{}{}</ul>", items, tail)


@admin.register(BalanceCheck)
class BalanceCheckAdmin(ReadOnlyAdmin):
    """Runs of the ledger balance check (Celery beat, or `manage.py check_ledger_balance`)."""

    list_display = ("checked_at", "result", "differences_found", "budgets_checked", "duration_ms")
    fields = ("checked_at", "result", "budgets_checked", "duration_ms", "differences_listed")
    readonly_fields = fields

    @admin.display(description=_("result"), ordering="difference_count")
    def result(self, check: BalanceCheck) -> str:
        if not check.difference_count:
            return str(_("balanced"))
        count = check.difference_count
        return ngettext("%(count)d difference", "%(count)d differences", count) % {"count": count}

    @admin.display(description=_("differences"))
    def differences_found(self, check: BalanceCheck) -> SafeString | str:
        return _differences_html(check, limit=3) if check.difference_count else "—"

    @admin.display(description=_("differences"))
    def differences_listed(self, check: BalanceCheck) -> SafeString | str:
        return _differences_html(check) if check.difference_count else "—"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, object] | None = None) -> HttpResponse:
        warning = balance_warning(balance_check_latest())
        if warning:
            messages.warning(request, warning)
        return super().changelist_view(request, extra_context)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("from_currency", "to_currency", "rate", "effective_from")
    list_filter = ("from_currency", "to_currency")


@admin.register(SiteBillingSettings)
class SiteBillingSettingsAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "billing_currency",
        "default_period",
        "default_student_token_limit",
        "max_student_token_limit",
        "max_student_cost_limit",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not SiteBillingSettings.objects.exists()

    def save_model(self, request: HttpRequest, obj: SiteBillingSettings, form: object, change: bool) -> None:
        site_billing_settings_save(site=obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# The fields quota_policy_set takes, besides the class.
_POLICY_FIELDS = (
    "period",
    "term_start",
    "term_end",
    "student_token_limit",
    "student_cost_limit",
    "class_token_pool",
    "class_cost_pool",
    "rpm",
    "tpm",
)


class QuotaPolicyAdminForm(forms.ModelForm):
    class Meta:
        model = QuotaPolicy
        fields = ("classroom", *_POLICY_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:  # the teachers' page's rules (the site's caps, a term's dates), as errors on this form
            quota_policy_validate(
                period=data.get("period"),
                term_start=data.get("term_start"),
                term_end=data.get("term_end"),
                student_token_limit=data.get("student_token_limit"),
                student_cost_limit=data.get("student_cost_limit"),
                class_token_pool=data.get("class_token_pool"),
                class_cost_pool=data.get("class_cost_pool"),
                rpm=data.get("rpm"),
                tpm=data.get("tpm"),
            )
        except ValidationError as exc:
            form_add_service_errors(self, exc)
        return data


@admin.register(QuotaPolicy)
class QuotaPolicyAdmin(admin.ModelAdmin):
    """Saved and deleted through the billing services, as on the teachers' page: the site's
    caps hold for admins too, and the students' cached limits are dropped at once."""

    form = QuotaPolicyAdminForm
    list_display = (
        "classroom",
        "period",
        "student_token_limit",
        "student_cost_limit",
        "class_token_pool",
        "rpm",
        "tpm",
        "updated_at",
    )
    list_filter = ("period",)
    search_fields = ("classroom__name",)
    autocomplete_fields = ("classroom",)

    def get_readonly_fields(self, request: HttpRequest, obj: QuotaPolicy | None = None) -> tuple[str, ...]:
        # A policy is its class's (quota_policy_set saves by class): another class gets its own.
        return ("classroom",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: QuotaPolicy, form: QuotaPolicyAdminForm, change: bool) -> None:
        data = form.cleaned_data
        saved = quota_policy_set(
            classroom=obj.classroom if change else data["classroom"],
            **{name: data.get(name) for name in _POLICY_FIELDS},
        )
        # The admin goes on with `obj` (its log entry and redirect): make it the saved row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def delete_model(self, request: HttpRequest, obj: QuotaPolicy) -> None:
        quota_policy_delete(policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[QuotaPolicy]) -> None:
        for policy in queryset:
            quota_policy_delete(policy=policy)
