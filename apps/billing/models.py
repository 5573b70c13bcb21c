"""Billing: quota policies, holds, the append-only ledger and its rollups.

Money is Decimal. Quota counters keep money in integer nano-units of the billing currency
(1 CNY = 1,000,000,000 units) so the conditional SQL that takes a hold compares exact
integers on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import overload

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.providers.models import ModelPrice
from webchat.bounds import SANE_MOMENTS

MONEY_UNITS = Decimal(1_000_000_000)
MONEY = {"max_digits": 20, "decimal_places": 10}
# The largest limits a site, class or student may be given. Far above any school's budget,
# and below what breaks: a money limit in units (x 10^9) must fit a 64-bit counter, and
# SQLite keeps a decimal as a float, whose rounding must not add a digit that MONEY cannot
# read back (9999999999.9999999999 was stored as 10^10 and failed every read of the row).
MAX_MONEY_LIMIT = Decimal(100_000_000)
MAX_TOKEN_LIMIT = 10**12
MAX_RPM = 100_000
MAX_TPM = 1_000_000_000  # a 32-bit column on PostgreSQL
MONEY_LIMIT = {**MONEY, "validators": [MinValueValidator(0), MaxValueValidator(MAX_MONEY_LIMIT)]}
TOKEN_LIMIT = {"validators": [MaxValueValidator(MAX_TOKEN_LIMIT)]}
RPM_LIMIT = {"validators": [MaxValueValidator(MAX_RPM)]}
TPM_LIMIT = {"validators": [MaxValueValidator(MAX_TPM)]}
MAX_EXCHANGE_RATE = Decimal(1_000_000)


# The one conversion between amounts and units, both ways: holds, settles, limits, the
# meter and the balance check all go through these two.
@overload
def money_units(amount: Decimal) -> int: ...
@overload
def money_units(amount: None) -> None: ...
@overload
def money_units(amount: Decimal | None) -> int | None: ...
def money_units(amount: Decimal | None) -> int | None:
    """A billing-currency amount in integer nano-units, rounded up (a hold never
    undershoots what the request may cost). None (no limit) stays None."""
    if amount is None:
        return None
    return int((amount * MONEY_UNITS).to_integral_value(rounding=ROUND_CEILING))


def money_from_units(units: int) -> Decimal:
    """Nano-units as an amount of the billing currency, to four places (as the meter shows it)."""
    return (Decimal(units) / MONEY_UNITS).quantize(Decimal("0.0001"))


# The same currencies models are priced in.
Currency = ModelPrice.Currency


MILLION = Decimal(1_000_000)


class Period(models.TextChoices):
    DAY = "day", _("Day")
    WEEK = "week", _("Week")
    MONTH = "month", _("Month")
    TERM = "term", _("Term")


class ExchangeRate(models.Model):
    """1 `from_currency` = `rate` `to_currency`, from `effective_from` on."""

    from_currency = models.CharField(_("from"), max_length=3, choices=Currency.choices)
    to_currency = models.CharField(_("to"), max_length=3, choices=Currency.choices)
    # Bounded: SQLite keeps a decimal as a float, and 9999999999.99999999 was stored as a
    # number the column could not read back (every page listing rates failed).
    rate = models.DecimalField(
        _("rate"),
        max_digits=18,
        decimal_places=8,
        validators=[MinValueValidator(Decimal("0.00000001")), MaxValueValidator(MAX_EXCHANGE_RATE)],
    )
    effective_from = models.DateTimeField(_("effective from"), validators=SANE_MOMENTS)

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["from_currency", "to_currency", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_currency", "to_currency", "effective_from"], name="rate_unique_start"
            ),
            models.CheckConstraint(
                condition=models.Q(rate__gt=0),
                name="rate_positive",
                violation_error_message=_("A rate is more than zero."),
            ),
        ]

    def __str__(self) -> str:
        return f"1 {self.from_currency} = {self.rate} {self.to_currency}"


class SiteBillingSettings(models.Model):
    """One row (pk=1): the billing currency, defaults for classes without a policy, and the
    most a teacher may hand out."""

    billing_currency = models.CharField(
        _("billing currency"), max_length=3, choices=Currency.choices, default=Currency.CNY
    )
    # No term: a site has no term dates (a class's quota has them), so everyone on the
    # site's defaults would be refused as outside the term.
    default_period = models.CharField(
        _("default period"),
        max_length=8,
        choices=[(value, label) for value, label in Period.choices if value != Period.TERM],
        default=Period.MONTH,
    )
    default_student_token_limit = models.PositiveBigIntegerField(
        _("default tokens per student"), null=True, blank=True, default=200_000, **TOKEN_LIMIT
    )
    default_student_cost_limit = models.DecimalField(
        _("default money per student"), null=True, blank=True, **MONEY_LIMIT
    )
    default_rpm = models.PositiveIntegerField(
        _("default requests per minute"), null=True, blank=True, default=60, **RPM_LIMIT
    )
    default_tpm = models.PositiveIntegerField(
        _("default tokens per minute"), null=True, blank=True, default=100_000, **TPM_LIMIT
    )
    max_student_token_limit = models.PositiveBigIntegerField(
        _("cap: tokens per student"), null=True, blank=True, **TOKEN_LIMIT
    )
    max_student_cost_limit = models.DecimalField(_("cap: money per student"), null=True, blank=True, **MONEY_LIMIT)
    max_rpm = models.PositiveIntegerField(_("cap: requests per minute"), null=True, blank=True, **RPM_LIMIT)
    max_tpm = models.PositiveIntegerField(_("cap: tokens per minute"), null=True, blank=True, **TPM_LIMIT)

    class Meta:
        verbose_name = _("site billing settings")
        verbose_name_plural = _("site billing settings")

    def __str__(self) -> str:
        return str(_("Site billing settings"))


class QuotaPolicy(models.Model):
    classroom = models.OneToOneField(
        "accounts.Classroom", on_delete=models.CASCADE, related_name="quota_policy", verbose_name=_("class")
    )
    period = models.CharField(_("period"), max_length=8, choices=Period.choices, default=Period.MONTH)
    term_start = models.DateField(_("term starts"), null=True, blank=True)
    term_end = models.DateField(_("term ends"), null=True, blank=True)
    student_token_limit = models.PositiveBigIntegerField(_("tokens per student"), null=True, blank=True, **TOKEN_LIMIT)
    student_cost_limit = models.DecimalField(_("money per student"), null=True, blank=True, **MONEY_LIMIT)
    class_token_pool = models.PositiveBigIntegerField(
        _("tokens for the whole class"), null=True, blank=True, **TOKEN_LIMIT
    )
    class_cost_pool = models.DecimalField(_("money for the whole class"), null=True, blank=True, **MONEY_LIMIT)
    rpm = models.PositiveIntegerField(_("requests per minute per student"), null=True, blank=True, **RPM_LIMIT)
    tpm = models.PositiveIntegerField(_("tokens per minute per student"), null=True, blank=True, **TPM_LIMIT)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("quota policy")
        verbose_name_plural = _("quota policies")

    def __str__(self) -> str:
        return f"{self.classroom}: {self.get_period_display()}"


class StudentOverride(models.Model):
    classroom = models.ForeignKey("accounts.Classroom", on_delete=models.CASCADE, related_name="quota_overrides")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota_overrides")
    token_limit = models.PositiveBigIntegerField(_("tokens"), null=True, blank=True, **TOKEN_LIMIT)
    cost_limit = models.DecimalField(_("money"), null=True, blank=True, **MONEY_LIMIT)

    class Meta:
        verbose_name = _("student override")
        verbose_name_plural = _("student overrides")
        constraints = [models.UniqueConstraint(fields=["classroom", "student"], name="override_unique_student")]


class UsageCounter(models.Model):
    """Used and held amounts for one budget (a student in a class, a class pool, or a user
    without a class) in one period. Holds are taken by a conditional UPDATE on this row."""

    scope_key = models.CharField(max_length=64)
    period_start = models.DateTimeField()
    tokens_used = models.BigIntegerField(default=0)
    tokens_held = models.BigIntegerField(default=0)
    cost_used_units = models.BigIntegerField(default=0)
    cost_held_units = models.BigIntegerField(default=0)
    # Of the used amounts, what the ledger holds for this budget and period from requests
    # counted under another period's row: the class's period changed mid-way (a month to
    # days, and back). Carried in so the meter and the limit see what was spent; the
    # balance check leaves it out of what this row's own holds must add up to.
    tokens_carried = models.BigIntegerField(default=0)
    cost_carried_units = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope_key", "period_start"], name="counter_unique_period")]


class RateCounter(models.Model):
    """Requests and tokens of one user in one minute (fixed window), for RPM/TPM."""

    scope_key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope_key", "window_start"], name="ratecounter_unique_window")]


class Hold(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SETTLED = "settled", _("Settled")
        EXPIRED = "expired", _("Expired")
        # Settling failed for an unexpected reason: the hold was let go without a ledger row
        # (the reply is saved and marked for review; the log has the error).
        RELEASED = "released", _("Released unsettled")

    request_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    classroom = models.ForeignKey("accounts.Classroom", on_delete=models.SET_NULL, null=True, related_name="+")
    model = models.ForeignKey("providers.ChatModel", on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey("providers.ModelPrice", on_delete=models.PROTECT, null=True, related_name="+")
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(1))
    billing_currency = models.CharField(max_length=3)
    prompt_tokens = models.PositiveIntegerField()  # counted before the call
    tokens = models.PositiveBigIntegerField()  # prompt + max_tokens
    cost_units = models.BigIntegerField()
    counter_keys = models.JSONField(default=list)  # [[scope_key, period_start ISO], ...]
    entry_point = models.CharField(max_length=16, default="chat")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="hold_active_age")]


class LedgerEntry(models.Model):
    """One row per request (and one per correction). Never updated, never deleted."""

    class Kind(models.TextChoices):
        CHARGE = "charge", _("Charge")
        CORRECTION = "correction", _("Correction")

    class Status(models.TextChoices):
        COMPLETE = "complete", _("Complete")
        STOPPED = "stopped", _("Stopped")
        INTERRUPTED = "interrupted", _("Interrupted")
        FAILED = "failed", _("Failed")

    class UsageSource(models.TextChoices):
        PROVIDER = "provider", _("Reported by the provider")
        COUNTED = "counted", _("Counted with tiktoken")

    class KeyScope(models.TextChoices):
        """Whose key a request used (the route's credential scope, written as it was)."""

        USER = "user", _("Personal key")
        CLASS = "class", _("Class key")
        SITE = "site", _("Site key")
        NONE = "none", _("No key")  # a provider that needs none (the demo)

    class EntryPoint(models.TextChoices):
        CHAT = "chat", _("Chat")
        API = "api", _("OpenAI-compatible API")

    class UsageReview(models.TextChoices):
        """Why a request's token counts are not simply the provider's (blank: they are, or
        the provider sent none and we counted). Each one is worth checking against the
        provider's own bill."""

        UNDER_REPORTED = "under_reported", _("Provider reported less than the text: our count billed")
        MALFORMED = "malformed", _("Provider's usage was not valid numbers: our count billed")
        CLAMPED = "clamped", _("Provider reported an implausible amount: billed at the bound")
        UNSETTLED = "unsettled", _("Settling failed: hold released, nothing billed")

    request_id = models.CharField(_("request id"), max_length=64)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.CHARGE)
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections", verbose_name=_("corrects")
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries", verbose_name=_("user")
    )
    classroom = models.ForeignKey(
        "accounts.Classroom",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ledger_entries",
        verbose_name=_("class"),
    )
    credential = models.ForeignKey(
        "providers.Credential",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
        verbose_name=_("key"),
    )
    credential_scope = models.CharField(_("key scope"), max_length=16, blank=True, choices=KeyScope.choices)
    provider_slug = models.CharField(_("provider"), max_length=50)
    model = models.ForeignKey(
        "providers.ChatModel", on_delete=models.PROTECT, related_name="ledger_entries", verbose_name=_("model")
    )
    route_name = models.CharField(_("route"), max_length=300)
    prompt_tokens = models.IntegerField(_("prompt tokens"))
    completion_tokens = models.IntegerField(_("completion tokens"))
    usage_source = models.CharField(_("usage source"), max_length=12, choices=UsageSource.choices)
    estimated = models.BooleanField(_("estimated count"), default=False)
    usage_review = models.CharField(
        _("usage to review"), max_length=16, choices=UsageReview.choices, blank=True, default=""
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    price_input_per_million = models.DecimalField(_("input price per million"), **MONEY)
    price_output_per_million = models.DecimalField(_("output price per million"), **MONEY)
    price_currency = models.CharField(_("price currency"), max_length=3)
    price_effective_from = models.DateTimeField(_("price in force since"), null=True, blank=True)
    cost = models.DecimalField(_("cost (model currency)"), **MONEY)
    exchange_rate = models.DecimalField(_("exchange rate"), max_digits=18, decimal_places=8)
    billing_currency = models.CharField(_("billing currency"), max_length=3)
    cost_billing = models.DecimalField(_("cost (billing currency)"), **MONEY)
    first_chunk_ms = models.PositiveIntegerField(_("time to first token (ms)"), null=True, blank=True)
    total_ms = models.PositiveIntegerField(_("total time (ms)"), null=True, blank=True)
    entry_point = models.CharField(_("entry point"), max_length=16, choices=EntryPoint.choices)
    started_at = models.DateTimeField(_("started"))
    created_at = models.DateTimeField(_("recorded"), db_index=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-id"]
        constraints = [
            # Settling twice cannot write a second charge for one request.
            models.UniqueConstraint(
                fields=["request_id"], condition=models.Q(kind="charge"), name="ledger_one_charge_per_request"
            ),
        ]
        indexes = [
            models.Index(fields=["classroom", "created_at"], name="ledger_class_time"),
            models.Index(fields=["user", "created_at"], name="ledger_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.route_name} {self.cost_billing} {self.billing_currency}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def input_cost(self) -> Decimal:
        """Input tokens × the input price per million (in the price's currency)."""
        return self.prompt_tokens * self.price_input_per_million / MILLION

    @property
    def output_cost(self) -> Decimal:
        return self.completion_tokens * self.price_output_per_million / MILLION

    @property
    def converted(self) -> bool:
        """Billed in another currency than the model's price (through exchange_rate)."""
        return self.price_currency != self.billing_currency


class UsageRollup(models.Model):
    """Ledger totals per hour or day × student × class × model. Rebuilt per bucket range,
    so running a rollup twice gives the same rows."""

    class Granularity(models.TextChoices):
        HOUR = "hour", _("Hour")
        DAY = "day", _("Day")

    granularity = models.CharField(_("granularity"), max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField(_("bucket start"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    classroom = models.ForeignKey(
        "accounts.Classroom", on_delete=models.CASCADE, null=True, related_name="+", verbose_name=_("class")
    )
    model = models.ForeignKey(
        "providers.ChatModel", on_delete=models.CASCADE, related_name="+", verbose_name=_("model")
    )
    requests = models.PositiveIntegerField(_("requests"))
    prompt_tokens = models.BigIntegerField(_("prompt tokens"))
    completion_tokens = models.BigIntegerField(_("completion tokens"))
    cost_billing = models.DecimalField(_("cost"), **MONEY)

    class Meta:
        verbose_name = _("usage rollup")
        verbose_name_plural = _("usage rollups")
        ordering = ["-bucket_start"]
        indexes = [
            models.Index(fields=["granularity", "bucket_start"], name="rollup_bucket"),
            models.Index(fields=["classroom", "granularity", "bucket_start"], name="rollup_class_bucket"),
        ]


class JobRun(models.Model):
    """When a periodic job last succeeded (for /healthz and the admin)."""

    name = models.CharField(_("job"), max_length=50, unique=True)
    last_success_at = models.DateTimeField(_("last success"), null=True)
    last_duration_ms = models.PositiveIntegerField(_("last duration (ms)"), null=True)
    last_detail = models.CharField(_("last result"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")

    def __str__(self) -> str:
        return self.name


class BalanceCheck(models.Model):
    """One run of the ledger balance check: each budget's usage counter and the usage
    rollups set against the ledger they should agree with. Written by
    services.ledger_balance_check, never edited."""

    checked_at = models.DateTimeField(_("checked"), db_index=True)
    budgets_checked = models.PositiveIntegerField(_("budgets checked"))
    difference_count = models.PositiveIntegerField(_("differences found"))
    # [{"where", "budget", "field", "ledger", "found"}, ...]: the first ones found (see
    # selectors.BalanceDifference); difference_count has them all.
    differences = models.JSONField(_("differences"), default=list)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))

    class Meta:
        verbose_name = _("ledger balance check")
        verbose_name_plural = _("ledger balance checks")
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M} ({self.difference_count})"
