"""Reads for billing: the limits that apply, periods, prices, meters and dashboards."""

from __future__ import annotations

import calendar
import time as time_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.accounts.models import Classroom, User
from apps.accounts.selectors import classroom_students
from webchat.plainsql import select

from .counters import counter_read
from .models import (
    MONEY_UNITS,
    BalanceCheck,
    ExchangeRate,
    Hold,
    JobRun,
    LedgerEntry,
    Period,
    QuotaPolicy,
    SiteBillingSettings,
    StudentOverride,
    UsageCounter,
    UsageRollup,
    money_from_units,
    money_units,
)

# The site's billing settings are read on every request and change rarely: each process
# keeps them for a few seconds (an admin's change applies everywhere within that time).
SITE_SETTINGS_TTL = 5.0
_site_cache: tuple[float, SiteBillingSettings] | None = None


def site_billing_settings(*, fresh: bool = False) -> SiteBillingSettings:
    global _site_cache
    now = time_module.monotonic()
    if not fresh and _site_cache is not None and _site_cache[0] > now:
        return _site_cache[1]
    settings_row, _ = SiteBillingSettings.objects.get_or_create(
        pk=1, defaults={"billing_currency": settings.BILLING_CURRENCY}
    )
    _site_cache = (now + SITE_SETTINGS_TTL, settings_row)
    return settings_row


def site_billing_settings_forget() -> None:
    """Drop the cached row and the limits derived from it (after an admin saves it)."""
    global _site_cache
    _site_cache = None
    _limits_cache.clear()


def exchange_rate_at(*, from_currency: str, to_currency: str, when: datetime) -> Decimal:
    """How many `to_currency` one `from_currency` buys at `when` (admin-set rates; the
    inverse of a rate set the other way round is used when only that exists)."""
    if from_currency == to_currency:
        return Decimal(1)
    direct = (
        ExchangeRate.objects.filter(from_currency=from_currency, to_currency=to_currency, effective_from__lte=when)
        .order_by("-effective_from")
        .first()
    )
    if direct is not None:
        return direct.rate
    inverse = (
        ExchangeRate.objects.filter(from_currency=to_currency, to_currency=from_currency, effective_from__lte=when)
        .order_by("-effective_from")
        .first()
    )
    if inverse is not None:
        return (Decimal(1) / inverse.rate).quantize(Decimal("0.00000001"))
    raise ExchangeRate.DoesNotExist(f"No exchange rate from {from_currency} to {to_currency}; add one in admin.")


def _capped(value: int | None, cap: int | None) -> int | None:
    if cap is None:
        return value
    return cap if value is None else min(value, cap)


@dataclass(frozen=True)
class Limits:
    period: str
    term_start: date | None
    term_end: date | None
    student_tokens: int | None
    student_cost_units: int | None
    pool_tokens: int | None
    pool_cost_units: int | None
    rpm: int | None
    tpm: int | None


# Limits are read on every request; each process keeps a student's for a few seconds (a
# teacher's change applies at once where it was saved and everywhere within LIMITS_TTL).
LIMITS_TTL = 5.0
LIMITS_CACHE_SIZE = 20_000
_limits_cache: dict[tuple[int, int | None], tuple[float, Limits]] = {}


def limits_forget() -> None:
    _limits_cache.clear()


def limits_for(*, user: User, classroom: Classroom | None, site: SiteBillingSettings | None = None) -> Limits:
    """The limits a request of `user` in `classroom` draws on: the student's override, else
    the class policy, else the site defaults; never above the site's caps."""
    key = (user.pk, classroom.pk if classroom else None)
    now = time_module.monotonic()
    cached = _limits_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    if len(_limits_cache) >= LIMITS_CACHE_SIZE:
        _limits_cache.clear()
    limits = _limits_read(user=user, classroom=classroom, site=site or site_billing_settings())
    _limits_cache[key] = (now + LIMITS_TTL, limits)
    return limits


def _limits_read(*, user: User, classroom: Classroom | None, site: SiteBillingSettings) -> Limits:
    policy = override = None
    if classroom is not None:
        # Nearly every turn asks (a student's limits are kept only seconds): plain SQL
        # (webchat/plainsql.py), the class policy and this student's override. A class
        # that never saved a policy of its own runs on the site's defaults, and its
        # teacher's overrides apply to them (they were read only beside a saved policy,
        # so an override said "saved" and changed nothing).
        policies = select(QuotaPolicy, {"classroom": classroom.pk})
        policy = policies[0] if policies else None
        overrides = select(StudentOverride, {"classroom": classroom.pk, "student": user.pk})
        override = overrides[0] if overrides else None
    if policy is None:
        tokens, cost = site.default_student_token_limit, site.default_student_cost_limit
        rpm, tpm, period, term_start, term_end = site.default_rpm, site.default_tpm, site.default_period, None, None
        pool_tokens = pool_cost = None
    else:
        tokens, cost = policy.student_token_limit, policy.student_cost_limit
        rpm, tpm, period = policy.rpm, policy.tpm, policy.period
        term_start, term_end = policy.term_start, policy.term_end
        pool_tokens, pool_cost = policy.class_token_pool, policy.class_cost_pool
    if override is not None:
        tokens = override.token_limit if override.token_limit is not None else tokens
        cost = override.cost_limit if override.cost_limit is not None else cost
    return Limits(
        period=period,
        term_start=term_start,
        term_end=term_end,
        student_tokens=_capped(tokens, site.max_student_token_limit),
        student_cost_units=_capped(money_units(cost), money_units(site.max_student_cost_limit)),
        pool_tokens=pool_tokens,
        pool_cost_units=money_units(pool_cost),
        rpm=_capped(rpm, site.max_rpm),
        tpm=_capped(tpm, site.max_tpm),
    )


def period_bounds(*, limits: Limits, now: datetime) -> tuple[datetime | None, datetime]:
    """(start, reset) of the period containing `now`, in the site's time zone. For a term
    outside its dates, start is None."""
    local = timezone.localtime(now)
    tz = local.tzinfo
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if limits.period == Period.DAY:
        return midnight, midnight + timedelta(days=1)
    if limits.period == Period.WEEK:
        start = midnight - timedelta(days=midnight.weekday())
        return start, start + timedelta(days=7)
    if limits.period == Period.MONTH:
        start = midnight.replace(day=1)
        days = calendar.monthrange(start.year, start.month)[1]
        return start, start + timedelta(days=days)
    if limits.term_start is None or limits.term_end is None:
        return None, midnight
    start = datetime.combine(limits.term_start, time.min, tzinfo=tz)
    reset = datetime.combine(limits.term_end + timedelta(days=1), time.min, tzinfo=tz)
    if not start <= local < reset:
        return None, reset
    return start, reset


def classroom_period_dates(*, classroom: Classroom, now: datetime | None = None) -> tuple[date, date] | None:
    """First and last day of the class's current quota period (its policy's, else the
    site's default period): what the usage page shows when opened from a link. None when
    the class counts by term and today is outside the term."""
    policy = QuotaPolicy.objects.filter(classroom=classroom).first()
    period = Limits(
        period=policy.period if policy else site_billing_settings().default_period,
        term_start=policy.term_start if policy else None,
        term_end=policy.term_end if policy else None,
        student_tokens=None,
        student_cost_units=None,
        pool_tokens=None,
        pool_cost_units=None,
        rpm=None,
        tpm=None,
    )
    start, reset = period_bounds(limits=period, now=now or timezone.now())
    if start is None:
        return None
    return start.date(), (reset - timedelta(days=1)).date()


@dataclass(frozen=True)
class QuotaStatus:
    """The student's meter. `*_used` is what settled replies cost; `*_held` is what replies
    still being written hold (their question plus the longest reply allowed, until they
    finish); what is left is the limit minus both, which is what a new question must fit."""

    tokens_used: int
    token_limit: int | None
    cost_used: Decimal
    cost_limit: Decimal | None
    currency: str
    reset_at: datetime | None
    tokens_held: int = 0
    cost_held: Decimal = Decimal(0)

    @property
    def tokens_left(self) -> int | None:
        return None if self.token_limit is None else max(self.token_limit - self.tokens_used - self.tokens_held, 0)

    @property
    def cost_left(self) -> Decimal | None:
        return None if self.cost_limit is None else max(self.cost_limit - self.cost_used - self.cost_held, Decimal(0))

    @property
    def percent_used(self) -> int:
        """Used and held together, as a share of the tighter limit (the meter's bar)."""
        return self._percent(self.tokens_used + self.tokens_held, self.cost_used + self.cost_held)

    @property
    def percent_settled(self) -> int:
        """Used only (the darker part of the meter's bar)."""
        return self._percent(self.tokens_used, self.cost_used)

    def _percent(self, tokens: int, cost: Decimal) -> int:
        shares = []
        if self.token_limit:
            shares.append(tokens / self.token_limit)
        if self.cost_limit:
            shares.append(float(cost / self.cost_limit))
        return min(int(max(shares, default=0) * 100), 100)


class QuotaFigures(TypedDict):
    """A QuotaStatus as JSON: the chat socket's `quota` field and the meter's refresh."""

    tokens_used: int
    tokens_held: int
    tokens_left: int | None
    token_limit: int | None
    cost_used: str
    cost_held: str
    cost_left: str | None
    cost_limit: str | None
    currency: str
    reset_at: str | None
    percent_used: int
    percent_settled: int


def quota_figures(status: QuotaStatus) -> QuotaFigures:
    return {
        "tokens_used": status.tokens_used,
        "tokens_held": status.tokens_held,
        "tokens_left": status.tokens_left,
        "token_limit": status.token_limit,
        "cost_used": str(status.cost_used),
        "cost_held": str(status.cost_held),
        "cost_left": str(status.cost_left) if status.cost_left is not None else None,
        "cost_limit": str(status.cost_limit) if status.cost_limit is not None else None,
        "currency": status.currency,
        "reset_at": status.reset_at.isoformat() if status.reset_at else None,
        "percent_used": status.percent_used,
        "percent_settled": status.percent_settled,
    }


def quota_status(*, user: User, classroom: Classroom | None, now: datetime | None = None) -> QuotaStatus:
    """The student's meter: used, held by running replies, the limits and when the period
    resets (one query for the counter)."""
    now = now or timezone.now()
    limits = limits_for(user=user, classroom=classroom)
    start, reset_at = period_bounds(limits=limits, now=now)
    key = f"c{classroom.pk}:s{user.pk}" if classroom else f"u{user.pk}"
    # After every turn: one plain statement (counters.py).
    tokens_used, tokens_held, units_used, units_held = (
        counter_read(scope_key=key, period_start=start) if start else None
    ) or (0, 0, 0, 0)
    return QuotaStatus(
        tokens_used=tokens_used,
        tokens_held=tokens_held,
        token_limit=limits.student_tokens,
        cost_used=money_from_units(units_used),
        cost_held=money_from_units(units_held),
        cost_limit=money_from_units(limits.student_cost_units) if limits.student_cost_units is not None else None,
        currency=site_billing_settings().billing_currency,
        reset_at=reset_at if start else None,
    )


def ledger_for_classroom(*, classroom: Classroom, start: datetime, end: datetime) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(classroom=classroom, created_at__gte=start, created_at__lt=end)
        .select_related("user", "model__provider")
        .order_by("created_at", "id")
    )


def ledger_batch_for_classroom(
    *, classroom: Classroom, start: datetime, end: datetime, after: tuple[datetime, int] | None, size: int
) -> list[LedgerEntry]:
    """The next `size` rows of ledger_for_classroom after (created_at, id) `after` (None:
    from the first): one query per batch, no cursor held between batches."""
    rows = ledger_for_classroom(classroom=classroom, start=start, end=end)
    if after is not None:
        rows = rows.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1]))
    return list(rows[:size])


# --- A user's own usage page: straight from the ledger, so it is current -------------

# When the class term is not running there is no current period: the page shows this many days.
USER_USAGE_FALLBACK_DAYS = 30


@dataclass(frozen=True)
class UsageWindow:
    """The span a user's usage page shows: [start, end) in the site's time zone."""

    start: datetime
    end: datetime
    in_period: bool  # False: no quota period is running (a term outside its dates)


def _local_days(*, start: datetime, end: datetime) -> list[date]:
    """The dates, in the site's time zone, that [start, end) touches."""
    first, last = timezone.localdate(start), timezone.localdate(end - timedelta(microseconds=1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def usage_window_for_user(*, user: User, classroom: Classroom | None, now: datetime | None = None) -> UsageWindow:
    """The user's current quota period (the one the meter counts), or, when their class
    counts by term and the term is not running, the last USER_USAGE_FALLBACK_DAYS days."""
    now = now or timezone.now()
    start, reset = period_bounds(limits=limits_for(user=user, classroom=classroom), now=now)
    if start is not None:
        return UsageWindow(start=start, end=reset, in_period=True)
    tomorrow = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return UsageWindow(start=tomorrow - timedelta(days=USER_USAGE_FALLBACK_DAYS), end=tomorrow, in_period=False)


def ledger_for_user(*, user: User, start: datetime, end: datetime) -> QuerySet[LedgerEntry]:
    """The user's own ledger rows recorded in [start, end), newest first: charges and
    corrections, each correction with the row it corrects (one query per page)."""
    return (
        LedgerEntry.objects.filter(user=user, created_at__gte=start, created_at__lt=end)
        .select_related("corrects")
        .order_by("-created_at", "-id")
    )


class _LocalDate(TruncDate):
    """The day, in the site's time zone, of a moment in [since, until). On SQLite Django's
    TruncDate calls a Python function for every row (1.5 s of a 200,000-row class month's
    chart); when the zone's offset is the same over the whole range (always in China; in a
    zone with summer time, unless the range crosses a change), SQLite's own date() adds it."""

    def __init__(self, expression: str, *, since: datetime, until: datetime | None) -> None:
        super().__init__(expression, tzinfo=timezone.get_current_timezone())
        self.offset_minutes = _offset_minutes_throughout(self.tzinfo, since=since, until=until or timezone.now())

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, tuple[Any, ...]]:
        if self.offset_minutes is None:
            return self.as_sql(compiler, connection, **extra_context)
        sql, params = compiler.compile(self.lhs)
        return f"date({sql}, %s)", (*params, f"{self.offset_minutes:+d} minutes")


def _offset_minutes_throughout(tz: Any, *, since: datetime, until: datetime) -> int | None:
    """The zone's UTC offset in minutes if it holds from `since` to `until` (looked at every
    day: zones change offset at most a few times a year), else None."""
    offsets = {(since + timedelta(days=day)).astimezone(tz).utcoffset() for day in range((until - since).days + 1)} | {
        until.astimezone(tz).utcoffset()
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    return int(offset.total_seconds()) // 60 if offset is not None else None


class DailyUsage(TypedDict):
    """One day of a user's usage. Requests count charges; tokens and cost include the
    corrections recorded that day, so the days add up to the ledger."""

    day: date
    requests: int
    chat_requests: int
    api_requests: int
    prompt: int
    completion: int
    cost: Decimal


def user_daily_usage(*, user: User, start: datetime, end: datetime) -> list[DailyUsage]:
    """Every day of [start, end) in the site's time zone, days without use as zeros (one
    query, grouped in SQL)."""
    charge = Q(kind=LedgerEntry.Kind.CHARGE)
    grouped = {
        row["day"]: row
        for row in LedgerEntry.objects.filter(user=user, created_at__gte=start, created_at__lt=end)
        .annotate(day=_LocalDate("created_at", since=start, until=end))
        .values("day")
        .annotate(
            requests=Count("id", filter=charge),
            chat_requests=Count("id", filter=charge & Q(entry_point=LedgerEntry.EntryPoint.CHAT)),
            api_requests=Count("id", filter=charge & Q(entry_point=LedgerEntry.EntryPoint.API)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_billing"),
        )
        .order_by()
    }
    days: list[DailyUsage] = []
    for day in _local_days(start=start, end=end):
        row = grouped.get(day, {})
        days.append(
            {
                "day": day,
                "requests": row.get("requests") or 0,
                "chat_requests": row.get("chat_requests") or 0,
                "api_requests": row.get("api_requests") or 0,
                "prompt": row.get("prompt") or 0,
                "completion": row.get("completion") or 0,
                "cost": row.get("cost") or Decimal(0),
            }
        )
    return days


class ModelDayUsage(TypedDict):
    """One model's use on one day (a usage chart's bar segment)."""

    day: date  # in the site's time zone
    model_id: int | None
    provider: str  # the provider's slug
    model: str  # the model's id at the provider
    label: str  # the model's display name (its id when it has none)
    tokens: int
    cost: Decimal


def _daily_usage_by_model(
    rows: QuerySet[LedgerEntry], *, since: datetime, until: datetime | None
) -> list[ModelDayUsage]:
    """Tokens and cost per day (in the site's time zone) and model of these ledger rows (in
    [since, until)), corrections included; days without use have no rows (the chart fills
    them in). One query."""
    grouped = (
        rows.annotate(day=_LocalDate("created_at", since=since, until=until))
        .values("day", "model_id", "provider_slug", "route_name", "model__name", "model__display_name")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost_billing"))
        .order_by("day", "model_id")
    )
    return [
        {
            "day": row["day"],
            "model_id": row["model_id"],
            "provider": row["provider_slug"],
            "model": row["model__name"] or row["route_name"].partition("/")[2],
            "label": row["model__display_name"] or row["model__name"] or row["route_name"],
            "tokens": (row["prompt"] or 0) + (row["completion"] or 0),
            "cost": row["cost"] or Decimal(0),
        }
        for row in grouped
    ]


def user_daily_usage_by_model(*, user: User, start: datetime, end: datetime) -> list[ModelDayUsage]:
    """The /usage/ page's chart: the user's own ledger rows in [start, end)."""
    return _daily_usage_by_model(
        LedgerEntry.objects.filter(user=user, created_at__gte=start, created_at__lt=end), since=start, until=end
    )


@dataclass(frozen=True)
class UsageTotals:
    requests: int
    chat_requests: int
    api_requests: int
    prompt: int
    completion: int
    cost: Decimal

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion


def usage_totals(*, rows: Sequence[Mapping[str, Any]]) -> UsageTotals:
    """Rows of usage added up: a user's days (what the ledger holds for the whole span), or
    a class's students (the class's totals)."""
    return UsageTotals(
        requests=sum(row["requests"] for row in rows),
        chat_requests=sum(row["chat_requests"] for row in rows),
        api_requests=sum(row["api_requests"] for row in rows),
        prompt=sum(row["prompt"] for row in rows),
        completion=sum(row["completion"] for row in rows),
        cost=sum((row["cost"] for row in rows), Decimal(0)),
    )


# --- A class's usage dashboard (teachers): from the ledger too ------------------------
#
# Every figure of the page (chart, models, entry points, students, top users) is read
# from the same ledger rows of the range, so they always agree and include the request
# made a second ago. (The rollups, rebuilt by Celery every few minutes, lag behind and
# are not split by entry point; they are kept for the balance check.) Each read is one
# grouped query on the ledger's class/time index.

_CHARGE = Q(kind=LedgerEntry.Kind.CHARGE)


def _classroom_ledger(*, classroom: Classroom, since: datetime, until: datetime | None) -> QuerySet[LedgerEntry]:
    """The class's ledger rows (charges and corrections) from `since` up to `until`."""
    rows = LedgerEntry.objects.filter(classroom=classroom, created_at__gte=since)
    return rows if until is None else rows.filter(created_at__lt=until)


def classroom_requests_by_entry_point(
    *, classroom: Classroom, since: datetime, until: datetime | None = None
) -> dict[str, int]:
    """{"chat": n, "api": n}: the class's requests in the range by entry point."""
    counts = {str(choice): 0 for choice in LedgerEntry.EntryPoint}
    for row in (
        _classroom_ledger(classroom=classroom, since=since, until=until)
        .filter(_CHARGE)
        .values("entry_point")
        .annotate(requests=Count("id"))
        .order_by()
    ):
        counts[row["entry_point"]] = row["requests"]
    return counts


def classroom_usage_by_model(
    *, classroom: Classroom, since: datetime, until: datetime | None = None
) -> list[dict[str, object]]:
    """Requests, tokens and cost per model in the range, most expensive first. Requests
    count charges; tokens and cost include corrections (as everywhere on the page)."""
    return list(
        _classroom_ledger(classroom=classroom, since=since, until=until)
        .values("model__provider__slug", "model__name", "model__display_name")
        .annotate(
            requests=Count("id", filter=_CHARGE),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_billing"),
        )
        .order_by("-cost", "-requests", "model__name")
    )


def classroom_daily_usage_by_model(*, classroom: Classroom, since: datetime, until: datetime) -> list[ModelDayUsage]:
    """Tokens and cost per day and model in [since, until), for the class's chart."""
    return _daily_usage_by_model(
        _classroom_ledger(classroom=classroom, since=since, until=until), since=since, until=until
    )


def classroom_usage_by_student(
    *, classroom: Classroom, since: datetime, until: datetime | None = None
) -> list[dict[str, object]]:
    """Every student of the class (those with no use too), and anyone who used the class
    in the range but has left it since (`left: True`), most expensive first; requests
    also split into chat and API. The rows add up to the class's totals. Two queries."""
    usage = {
        row["user_id"]: row
        for row in _classroom_ledger(classroom=classroom, since=since, until=until)
        .values("user_id")
        .annotate(
            requests=Count("id", filter=_CHARGE),
            chat_requests=Count("id", filter=_CHARGE & Q(entry_point=LedgerEntry.EntryPoint.CHAT)),
            api_requests=Count("id", filter=_CHARGE & Q(entry_point=LedgerEntry.EntryPoint.API)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_billing"),
        )
        .order_by()
    }
    enrolled = set(classroom_students(classroom=classroom).values_list("pk", flat=True))
    people = User.objects.filter(Q(pk__in=enrolled) | Q(pk__in=list(usage))).order_by("username")
    rows = []
    for person in people:
        row = usage.get(person.pk, {})
        rows.append(
            {
                "student": person,
                "left": person.pk not in enrolled,
                "requests": row.get("requests") or 0,
                "chat_requests": row.get("chat_requests") or 0,
                "api_requests": row.get("api_requests") or 0,
                "prompt": row.get("prompt") or 0,
                "completion": row.get("completion") or 0,
                "cost": row.get("cost") or Decimal(0),
            }
        )
    return sorted(rows, key=lambda r: (-r["cost"], -(r["prompt"] + r["completion"]), r["student"].username))


# --- The ledger balance check: counters and rollups against the ledger ----------------


class BalanceDifference(TypedDict):
    """One stored number that disagrees with the ledger (JSON in BalanceCheck.differences)."""

    where: str  # "counter", "rollup" or "ledger"
    budget: str  # which counter, rollup group or request
    field: str
    ledger: str  # what the ledger (and the open holds) make it
    found: str  # what is stored


@dataclass(frozen=True)
class BalanceReport:
    budgets_checked: int
    differences: list[BalanceDifference]


@dataclass
class _Tally:
    tokens_used: int = 0
    tokens_held: int = 0
    units_used: int = 0
    units_held: int = 0
    charges: int = 0


@dataclass
class _Sums:
    values: dict[str, Decimal] = field(default_factory=dict)
    rows: int = 0


# Money may differ by rounding alone: a counter adds each request's cost rounded up to a
# nano-unit, while the ledger keeps it to 10 decimal places (and SQLite sums decimals as
# floats). So up to one nano-unit per ledger row is not a difference.
ROUNDING_UNIT = Decimal(1) / MONEY_UNITS
# Settles that started before a rollup read the ledger may commit just after it: buckets
# this close to the rollup's run are left for its next run.
ROLLUP_SETTLING_MARGIN = timedelta(minutes=1)


def ledger_balance(*, now: datetime) -> BalanceReport:
    """Set the stored totals against the ledger they are derived from:

    - each budget's usage counter in its current (latest) period: used tokens and money
      against the ledger charges of the holds taken on it, held ones against its open holds;
    - the hourly and daily rollups of the same span, per user and class, against the ledger
      rows of the buckets the last rollup run completed;
    - a settled hold without its charge, or a charge without a hold.

    Reads only. Run it inside one transaction (services.ledger_balance_check) so every
    table is read at the same moment."""
    counters = list(
        UsageCounter.objects.filter(
            period_start=Subquery(
                UsageCounter.objects.filter(scope_key=OuterRef("scope_key"))
                .order_by("-period_start")
                .values("period_start")[:1]
            )
        ).order_by("scope_key")
    )
    since = min((counter.period_start for counter in counters), default=None)
    differences: list[BalanceDifference] = []
    if since is not None:
        differences += _counter_differences(counters=counters, since=since)
    rollup_groups, rollup_differences = _rollup_differences(since=since, now=now)
    return BalanceReport(budgets_checked=len(counters) + rollup_groups, differences=differences + rollup_differences)


def _counter_differences(*, counters: list[UsageCounter], since: datetime) -> list[BalanceDifference]:
    tallies = {(counter.scope_key, counter.period_start): _Tally() for counter in counters}
    differences: list[BalanceDifference] = []
    charges = LedgerEntry.objects.filter(request_id=OuterRef("request_id"), kind=LedgerEntry.Kind.CHARGE)
    holds = (
        Hold.objects.filter(created_at__gte=since)
        .annotate(
            charged_tokens=Subquery(charges.values(total=F("prompt_tokens") + F("completion_tokens"))[:1]),
            charged_cost=Subquery(charges.values("cost_billing")[:1]),
        )
        .values_list("request_id", "status", "tokens", "cost_units", "counter_keys", "charged_tokens", "charged_cost")
        .order_by()
    )
    for request_id, status, tokens, units, keys, charged_tokens, charged_cost in holds.iterator(chunk_size=5000):
        if status in (Hold.Status.SETTLED, Hold.Status.EXPIRED) and charged_tokens is None:
            differences.append(
                {
                    "where": "ledger",
                    "budget": f"request {request_id}",
                    "field": "charge",
                    "ledger": "missing",
                    "found": f"hold {status}",
                }
            )
        for key, start in keys:
            tally = tallies.get((key, datetime.fromisoformat(start)))
            if tally is None:
                continue  # a budget's earlier period
            if status == Hold.Status.ACTIVE:
                tally.tokens_held += tokens
                tally.units_held += units
            elif charged_tokens is not None:
                tally.tokens_used += charged_tokens
                tally.units_used += money_units(charged_cost) or 0
                tally.charges += 1
    for counter in counters:
        tally = tallies[(counter.scope_key, counter.period_start)]
        budget = f"{counter.scope_key} from {timezone.localtime(counter.period_start):%Y-%m-%d %H:%M}"
        for name, ledger, found, slack in (
            # What was carried in from the ledger (the period changed) is no hold's.
            ("tokens_used", tally.tokens_used + counter.tokens_carried, counter.tokens_used, 0),
            ("tokens_held", tally.tokens_held, counter.tokens_held, 0),
            ("cost_used_units", tally.units_used + counter.cost_carried_units, counter.cost_used_units, tally.charges),
            ("cost_held_units", tally.units_held, counter.cost_held_units, 0),
        ):
            if abs(ledger - found) > slack:
                differences.append(
                    {"where": "counter", "budget": budget, "field": name, "ledger": str(ledger), "found": str(found)}
                )
    orphans = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, created_at__gte=since)
        .exclude(request_id__in=Hold.objects.values("request_id"))
        .values_list("request_id", flat=True)
    )
    for request_id in orphans.iterator():
        differences.append(
            {
                "where": "ledger",
                "budget": f"request {request_id}",
                "field": "hold",
                "ledger": "charged",
                "found": "no hold",
            }
        )
    return differences


def _rollup_differences(*, since: datetime | None, now: datetime) -> tuple[int, list[BalanceDifference]]:
    """(groups compared, differences). Only buckets the last rollup run completed count."""
    run = JobRun.objects.filter(name="rollup_usage").first()
    if run is None or run.last_success_at is None:
        return 0, []  # rollups never built: nothing to set against the ledger yet
    covered = min(run.last_success_at, now) - timedelta(milliseconds=run.last_duration_ms or 0) - ROLLUP_SETTLING_MARGIN
    hours_end = timezone.localtime(covered).replace(minute=0, second=0, microsecond=0)
    days_end = hours_end.replace(hour=0)
    start = timezone.localtime(since) if since is not None else days_end - timedelta(days=1)
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    groups, differences = 0, []
    for granularity, end in ((UsageRollup.Granularity.HOUR, hours_end), (UsageRollup.Granularity.DAY, days_end)):
        if end <= start:
            continue
        ledger = _sums(
            LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end),
            requests=Count("id", filter=Q(kind=LedgerEntry.Kind.CHARGE)),
            rows=Count("id"),
        )
        rolled = _sums(
            UsageRollup.objects.filter(granularity=granularity, bucket_start__gte=start, bucket_start__lt=end),
            requests=Sum("requests"),
        )
        for user_id, classroom_id in sorted(ledger.keys() | rolled.keys(), key=str):
            expected = ledger.get((user_id, classroom_id), _Sums())
            found = rolled.get((user_id, classroom_id), _Sums())
            groups += 1
            budget = (
                f"{granularity} rollups {start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M}, user {user_id}, "
                f"class {classroom_id or '-'}"
            )
            for name in ("requests", "prompt_tokens", "completion_tokens", "cost_billing"):
                slack = ROUNDING_UNIT * expected.rows if name == "cost_billing" else 0
                wanted, stored = expected.values.get(name, Decimal(0)), found.values.get(name, Decimal(0))
                if abs(wanted - stored) > slack:
                    differences.append(
                        {
                            "where": "rollup",
                            "budget": budget,
                            "field": name,
                            "ledger": _plain(wanted),
                            "found": _plain(stored),
                        }
                    )
    return groups, differences


def _sums(queryset: QuerySet, **extra: object) -> dict[tuple[int, int | None], _Sums]:
    """Per (user, class): requests, tokens and cost, and how many ledger rows made them."""
    grouped = (
        queryset.values("user_id", "classroom_id")
        .annotate(
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost_billing=Sum("cost_billing"),
            **extra,
        )
        .order_by()
    )
    result = {}
    for row in grouped:
        values = {
            name: Decimal(str(row[name] or 0))
            for name in ("requests", "prompt_tokens", "completion_tokens", "cost_billing")
        }
        result[(row["user_id"], row["classroom_id"])] = _Sums(values=values, rows=row.get("rows") or 0)
    return result


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def balance_check_latest() -> BalanceCheck | None:
    return BalanceCheck.objects.first()
