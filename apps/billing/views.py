"""Pages about money: a class's quota settings, usage dashboard and CSV export (teachers),
and everyone's own usage in the current quota period."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.models import Classroom
from apps.accounts.selectors import classroom_for_student, classroom_get_for_teacher
from webchat.forms import form_add_service_errors
from webchat.spreadsheet import csv_row

from .charts import usage_chart
from .forms import DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, DateRangeForm, QuotaPolicyForm, StudentOverrideForm
from .models import LedgerEntry, QuotaPolicy
from .selectors import (
    classroom_daily_usage_by_model,
    classroom_period_dates,
    classroom_requests_by_entry_point,
    classroom_usage_by_model,
    classroom_usage_by_student,
    ledger_batch_for_classroom,
    ledger_for_user,
    quota_figures,
    quota_status,
    site_billing_settings,
    usage_totals,
    usage_window_for_user,
    user_daily_usage,
    user_daily_usage_by_model,
)
from .services import quota_policy_set, student_override_set

TOP_USERS = 5
LEDGER_PAGE_SIZE = 50


@require_http_methods(["GET", "POST"])
@login_required
def quota_page(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    policy = QuotaPolicy.objects.filter(classroom=classroom).first()
    site = site_billing_settings()
    initial = (
        {k: getattr(policy, k) for k in QuotaPolicyForm.base_fields}
        if policy
        else {
            "period": site.default_period,
            "student_token_limit": site.default_student_token_limit,
            "student_cost_limit": site.default_student_cost_limit,
            "rpm": site.default_rpm,
            "tpm": site.default_tpm,
        }
    )
    # Money is stored to 10 decimal places: shown as typed (2, not 2.0000000000).
    initial = {k: _plain_decimal(v) if isinstance(v, Decimal) else v for k, v in initial.items()}
    form = QuotaPolicyForm(request.POST or None, initial=initial)
    override_form = StudentOverrideForm(classroom=classroom)
    override_form.fields["student"].empty_label = _("Choose a student")
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                quota_policy_set(classroom=classroom, **form.cleaned_data)
            except ValidationError as exc:
                form_add_service_errors(form, exc)
            else:
                messages.success(request, _("Quota saved."))
                return redirect("class-quota", classroom_id=classroom.pk)
        status = 400
    return render(
        request,
        "billing/quota.html",
        {
            "classroom": classroom,
            "form": form,
            "override_form": override_form,
            "overrides": classroom.quota_overrides.select_related("student").order_by("student__username"),
            "site": site,
            "policy": policy,
        },
        status=status,
    )


def _plain_decimal(value: Decimal) -> Decimal:
    """The same amount without trailing zeros, never in exponent form (2E+1 is 20)."""
    plain = value.normalize()
    return plain.quantize(Decimal(1)) if plain == plain.to_integral() else plain


@require_POST
@login_required
def override_set(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    form = StudentOverrideForm(request.POST, classroom=classroom)
    if form.is_valid():
        try:
            student_override_set(classroom=classroom, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Override saved."))
    else:
        messages.error(request, _("Choose a student and a limit."))
    return redirect("class-quota", classroom_id=classroom.pk)


def _date_range_form(request: HttpRequest, classroom: Classroom) -> DateRangeForm:
    """A bound range form: the dates asked for, or, when the query string has none (the
    links in the UI), the class's current quota period, so there is always a range."""
    if "start" in request.GET or "end" in request.GET:
        return DateRangeForm(request.GET)
    period = classroom_period_dates(classroom=classroom)
    if period is None:  # a term outside its dates: the last 30 days
        today = timezone.localdate()
        period = (today - timedelta(days=DEFAULT_RANGE_DAYS - 1), today)
    start, end = period
    start = max(start, end - timedelta(days=MAX_RANGE_DAYS))  # a term longer than the form allows
    return DateRangeForm({"start": start.isoformat(), "end": end.isoformat()})


@require_GET
@login_required
def usage_page(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    form = _date_range_form(request, classroom)
    if not form.is_valid():
        return render(request, "billing/usage.html", {"classroom": classroom, "form": form}, status=400)
    data = form.cleaned_data
    start, end = DateRangeForm.bounds(data["start"], data["end"])
    chart = usage_chart(
        first=data["start"],
        last=data["end"],
        rows=classroom_daily_usage_by_model(classroom=classroom, since=start, until=end),
        other_label=_("Other models"),
    )
    students = classroom_usage_by_student(classroom=classroom, since=start, until=end)
    return render(
        request,
        "billing/usage.html",
        {
            "classroom": classroom,
            "form": form,
            "chart": chart,
            "by_entry_point": classroom_requests_by_entry_point(classroom=classroom, since=start, until=end),
            "by_model": classroom_usage_by_model(classroom=classroom, since=start, until=end),
            "top_users": [row for row in students if row["requests"] or row["cost"]][:TOP_USERS],
            "students": students,
            "totals": usage_totals(rows=students),
            "currency": site_billing_settings().billing_currency,
            "start": data["start"],
            "end": data["end"],
        },
    )


@require_GET
@login_required
def my_usage(request: HttpRequest) -> HttpResponse:
    """The user's own requests (chat replies and API calls) in the current quota period."""
    classroom = classroom_for_student(user=request.user)
    window = usage_window_for_user(user=request.user, classroom=classroom)
    rows = Paginator(ledger_for_user(user=request.user, start=window.start, end=window.end), LEDGER_PAGE_SIZE)
    try:
        page = rows.page(request.GET.get("page", 1))  # page 1 exists even without rows
    except PageNotAnInteger:
        return HttpResponseBadRequest(_("The page must be a number."))
    except EmptyPage as exc:
        raise Http404(_("There is no such page.")) from exc
    days = user_daily_usage(user=request.user, start=window.start, end=window.end)
    quota = quota_status(user=request.user, classroom=classroom)
    return render(
        request,
        "billing/my_usage.html",
        {
            "classroom": classroom,
            "window": window,
            "last_day": window.end - timedelta(days=1),
            "totals": usage_totals(rows=days),
            "chart": usage_chart(
                first=timezone.localdate(window.start),
                last=timezone.localdate(window.end - timedelta(microseconds=1)),
                rows=user_daily_usage_by_model(user=request.user, start=window.start, end=window.end),
                other_label=_("Other models"),
            ),
            "quota": quota,
            "currency": quota.currency,
            "page": page,
            "page_has_corrections": any(entry.kind == LedgerEntry.Kind.CORRECTION for entry in page.object_list),
        },
    )


@require_GET
@login_required
def my_quota(request: HttpRequest) -> JsonResponse:
    """The meter's figures as JSON (static/js/quota_meter.js refreshes what running replies
    hold and what is left after each turn)."""
    status = quota_status(user=request.user, classroom=classroom_for_student(user=request.user))
    return JsonResponse(quota_figures(status), headers={"Cache-Control": "no-store"})


CSV_HEADER = [
    "time",
    "request_id",
    "kind",
    "username",
    "display_name",
    "provider",
    "model",
    "credential_scope",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "usage_source",
    "estimated",
    "status",
    "price_input_per_million",
    "price_output_per_million",
    "price_currency",
    "cost",
    "exchange_rate",
    "billing_currency",
    "cost_billing",
    "first_chunk_ms",
    "total_ms",
    "entry_point",
]


def _decimal_text(value: Decimal | None) -> str:
    """Fixed-point text for a CSV cell: str() of a Decimal zero read back with ten places
    is `0E-10`, which spreadsheets and people misread."""
    return "" if value is None else format(value, "f")


CSV_BATCH = 2000  # ledger rows read at a time for the class usage CSV


def _usage_csv_values(entry: LedgerEntry) -> list[object]:
    """One ledger row as the class usage CSV's columns (CSV_HEADER)."""
    return [
        timezone.localtime(entry.created_at).isoformat(),
        entry.request_id,
        entry.kind,
        entry.user.username,
        entry.user.display_name,
        entry.provider_slug,
        entry.model.name,
        entry.credential_scope,
        entry.prompt_tokens,
        entry.completion_tokens,
        entry.total_tokens,
        entry.usage_source,
        int(entry.estimated),
        entry.status,
        _decimal_text(entry.price_input_per_million),
        _decimal_text(entry.price_output_per_million),
        entry.price_currency,
        _decimal_text(entry.cost),
        _decimal_text(entry.exchange_rate),
        entry.billing_currency,
        _decimal_text(entry.cost_billing),
        entry.first_chunk_ms,
        entry.total_ms,
        entry.entry_point,
    ]


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@login_required
def usage_csv(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    form = _date_range_form(request, classroom)
    if not form.is_valid():
        return HttpResponseBadRequest(" ".join(str(e) for e in form.non_field_errors() or form.errors.values()))
    start, end = DateRangeForm.bounds(form.cleaned_data["start"], form.cleaned_data["end"])
    writer = csv.writer(_Echo())
    # The rows a batch at a time, each read on a thread: an ASGI server streams an async
    # iterator as it goes, where a plain one would be read whole into memory first.
    batch_read = sync_to_async(ledger_batch_for_classroom)

    async def rows() -> AsyncIterator[str]:
        yield "\ufeff"  # so spreadsheet programs open the Chinese names as UTF-8
        yield writer.writerow(CSV_HEADER)
        after = None
        while True:
            batch = await batch_read(classroom=classroom, start=start, end=end, after=after, size=CSV_BATCH)
            for entry in batch:
                yield writer.writerow(csv_row(_usage_csv_values(entry)))
            if len(batch) < CSV_BATCH:
                return
            after = (batch[-1].created_at, batch[-1].pk)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    name = f"usage-class{classroom.pk}-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
