"""Reads for billing: the limits that apply, periods, prices, meters and dashboards."""
from __future__ import annotations

import calendar
import time as time_module
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.db.models import QuerySet, Subquery, Sum
from django.utils import timezone

from apps.accounts.models import Classroom, User

from .models import (
    MONEY_UNITS,
    ExchangeRate,
    LedgerEntry,
    Period,
    QuotaPolicy,
    SiteBillingSettings,
    StudentOverride,
    UsageCounter,
    UsageRollup,
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
        pk=1, defaults={"billing_currency": settings.BILLING_CURRENCY})
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
    direct = (ExchangeRate.objects.filter(from_currency=from_currency, to_currency=to_currency,
                                          effective_from__lte=when).order_by("-effective_from").first())
    if direct is not None:
        return direct.rate
    inverse = (ExchangeRate.objects.filter(from_currency=to_currency, to_currency=from_currency,
                                           effective_from__lte=when).order_by("-effective_from").first())
    if inverse is not None:
        return (Decimal(1) / inverse.rate).quantize(Decimal("0.00000001"))
    raise ExchangeRate.DoesNotExist(f"No exchange rate from {from_currency} to {to_currency}; add one in admin.")


def _units(amount: Decimal | None) -> int | None:
    if amount is None:
        return None
    return int((amount * MONEY_UNITS).to_integral_value(rounding=ROUND_CEILING))


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
    policy = None
    if classroom is not None:
        # One query: the class policy with this student's override (if any) alongside.
        overrides = StudentOverride.objects.filter(classroom=classroom, student=user)
        policy = (QuotaPolicy.objects.filter(classroom=classroom)
                  .annotate(override_tokens=Subquery(overrides.values("token_limit")[:1]),
                            override_cost=Subquery(overrides.values("cost_limit")[:1]))
                  .first())
    if policy is None:
        tokens, cost = site.default_student_token_limit, site.default_student_cost_limit
        rpm, tpm, period, term_start, term_end = site.default_rpm, site.default_tpm, site.default_period, None, None
        pool_tokens = pool_cost = None
    else:
        tokens = policy.override_tokens if policy.override_tokens is not None else policy.student_token_limit
        cost = policy.override_cost if policy.override_cost is not None else policy.student_cost_limit
        rpm, tpm, period = policy.rpm, policy.tpm, policy.period
        term_start, term_end = policy.term_start, policy.term_end
        pool_tokens, pool_cost = policy.class_token_pool, policy.class_cost_pool
    return Limits(
        period=period, term_start=term_start, term_end=term_end,
        student_tokens=_capped(tokens, site.max_student_token_limit),
        student_cost_units=_capped(_units(cost), _units(site.max_student_cost_limit)),
        pool_tokens=pool_tokens, pool_cost_units=_units(pool_cost),
        rpm=_capped(rpm, site.max_rpm), tpm=_capped(tpm, site.max_tpm),
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
    period = Limits(period=policy.period if policy else site_billing_settings().default_period,
                    term_start=policy.term_start if policy else None, term_end=policy.term_end if policy else None,
                    student_tokens=None, student_cost_units=None, pool_tokens=None, pool_cost_units=None,
                    rpm=None, tpm=None)
    start, reset = period_bounds(limits=period, now=now or timezone.now())
    if start is None:
        return None
    return start.date(), (reset - timedelta(days=1)).date()


@dataclass(frozen=True)
class QuotaStatus:
    tokens_used: int
    token_limit: int | None
    cost_used: Decimal
    cost_limit: Decimal | None
    currency: str
    reset_at: datetime | None

    @property
    def tokens_left(self) -> int | None:
        return None if self.token_limit is None else max(self.token_limit - self.tokens_used, 0)

    @property
    def cost_left(self) -> Decimal | None:
        return None if self.cost_limit is None else max(self.cost_limit - self.cost_used, Decimal(0))

    @property
    def percent_used(self) -> int:
        shares = []
        if self.token_limit:
            shares.append(self.tokens_used / self.token_limit)
        if self.cost_limit:
            shares.append(float(self.cost_used / self.cost_limit))
        return min(int(max(shares, default=0) * 100), 100)


def quota_status(*, user: User, classroom: Classroom | None, now: datetime | None = None) -> QuotaStatus:
    """The student's meter: used (including what running replies hold), the limits and
    when the period resets."""
    now = now or timezone.now()
    limits = limits_for(user=user, classroom=classroom)
    start, reset_at = period_bounds(limits=limits, now=now)
    key = f"c{classroom.pk}:s{user.pk}" if classroom else f"u{user.pk}"
    counter = UsageCounter.objects.filter(scope_key=key, period_start=start).first() if start else None
    tokens = (counter.tokens_used + counter.tokens_held) if counter else 0
    units = (counter.cost_used_units + counter.cost_held_units) if counter else 0
    return QuotaStatus(
        tokens_used=tokens, token_limit=limits.student_tokens,
        cost_used=(Decimal(units) / MONEY_UNITS).quantize(Decimal("0.0001")),
        cost_limit=(Decimal(limits.student_cost_units) / MONEY_UNITS).quantize(Decimal("0.0001"))
        if limits.student_cost_units is not None else None,
        currency=site_billing_settings().billing_currency, reset_at=reset_at if start else None,
    )


def ledger_for_classroom(*, classroom: Classroom, start: datetime, end: datetime) -> QuerySet[LedgerEntry]:
    return (LedgerEntry.objects.filter(classroom=classroom, created_at__gte=start, created_at__lt=end)
            .select_related("user", "model__provider").order_by("created_at", "id"))


def _daily_rollups(*, classroom: Classroom, since: datetime, until: datetime | None) -> QuerySet[UsageRollup]:
    """The class's daily rollups from `since` up to (not including) `until`."""
    rollups = UsageRollup.objects.filter(classroom=classroom, granularity=UsageRollup.Granularity.DAY,
                                         bucket_start__gte=since)
    return rollups if until is None else rollups.filter(bucket_start__lt=until)


def classroom_daily_usage(*, classroom: Classroom, since: datetime,
                          until: datetime | None = None) -> list[dict[str, object]]:
    """Per day: requests, tokens and cost (from the daily rollups)."""
    return list(
        _daily_rollups(classroom=classroom, since=since, until=until)
        .values("bucket_start")
        .annotate(requests=Sum("requests"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
                  cost=Sum("cost_billing"))
        .order_by("bucket_start")
    )


def classroom_usage_by_model(*, classroom: Classroom, since: datetime,
                             until: datetime | None = None) -> list[dict[str, object]]:
    return list(
        _daily_rollups(classroom=classroom, since=since, until=until)
        .values("model__provider__slug", "model__name")
        .annotate(requests=Sum("requests"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
                  cost=Sum("cost_billing"))
        .order_by("-cost", "-requests")
    )


def classroom_usage_by_student(*, classroom: Classroom, since: datetime,
                               until: datetime | None = None) -> list[dict[str, object]]:
    """Every student of the class (those with no use too), most expensive first."""
    usage = {
        row["user_id"]: row
        for row in _daily_rollups(classroom=classroom, since=since, until=until)
        .values("user_id")
        .annotate(requests=Sum("requests"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"),
                  cost=Sum("cost_billing"))
        .order_by()
    }
    rows = []
    for student in classroom.students.order_by("username"):
        row = usage.get(student.pk, {})
        rows.append({
            "student": student, "requests": row.get("requests") or 0, "prompt": row.get("prompt") or 0,
            "completion": row.get("completion") or 0, "cost": row.get("cost") or Decimal(0),
        })
    return sorted(rows, key=lambda r: (-r["cost"], -(r["prompt"] + r["completion"]), r["student"].username))
