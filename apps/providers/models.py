from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from webchat.bounds import SANE_MOMENTS

# A price per million tokens: never negative (a charge would become a credit, in the
# append-only ledger), and far above any model's.
PRICE_BOUNDS = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1_000_000))]


class Provider(models.Model):
    class AuthStyle(models.TextChoices):
        BEARER = "bearer", _("Bearer API key")
        ERNIE = "ernie", _("API Key + Secret Key (access token)")
        NONE = "none", _("No key")

    slug = models.SlugField(_("slug"), unique=True)
    name_en = models.CharField(_("English name"), max_length=100)
    name_zh = models.CharField(_("Chinese name"), max_length=100)
    # Absolute (https://api.deepseek.com/v1) or site-relative (/demo/v1, served by webchat
    # itself and reached through INTERNAL_BASE_URL).
    base_url = models.CharField(_("base URL"), max_length=500)
    signup_url = models.URLField(_("key page URL"), blank=True)
    # ERNIE: where an API Key + Secret Key are exchanged for an access token.
    token_url = models.URLField(_("token URL"), blank=True)
    # The environment variables a site key may come from (the lessons' names).
    env_key_var = models.CharField(_("API key variable"), max_length=64, blank=True)
    env_secret_var = models.CharField(_("secret key variable"), max_length=64, blank=True)
    env_base_url_var = models.CharField(_("base URL variable"), max_length=64, blank=True)
    notes_en = models.TextField(_("notes (English)"), blank=True)
    notes_zh = models.TextField(_("notes (Chinese)"), blank=True)
    auth_style = models.CharField(_("auth style"), max_length=16, choices=AuthStyle.choices, default=AuthStyle.BEARER)
    is_demo = models.BooleanField(_("demo"), default=False, help_text=_("The built-in demo model; no key, no network."))
    enabled = models.BooleanField(_("enabled"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("order"), default=100)

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["sort_order", "slug"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name_zh if (get_language() or "").startswith("zh") else self.name_en

    @property
    def notes(self) -> str:
        return self.notes_zh if (get_language() or "").startswith("zh") else self.notes_en

    @property
    def needs_key(self) -> bool:
        return self.auth_style != self.AuthStyle.NONE


class ChatModel(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models", verbose_name=_("provider"))
    name = models.CharField(_("model id"), max_length=150, help_text=_("The id sent to the provider's API."))
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    # One line for students choosing a model and teachers allowing one: what it is good at.
    description_en = models.CharField(_("description (English)"), max_length=200, blank=True)
    description_zh = models.CharField(_("description (Chinese)"), max_length=200, blank=True)
    context_window = models.PositiveIntegerField(_("context window (tokens)"), default=8192)
    max_output_tokens = models.PositiveIntegerField(_("max output tokens"), default=4096)
    enabled = models.BooleanField(_("enabled"), default=True)
    supports_tools = models.BooleanField(
        _("takes tools"),
        default=True,
        help_text=_("Whether the provider accepts function tools (tools, tool_choice) for this model via the API."),
    )
    thinks = models.BooleanField(
        _("thinks before answering"),
        default=False,
        help_text=_(
            "A reasoning model: it writes its thinking before the answer, and the provider bills the thinking "
            "as output. A chat reply is then held room for the model's max output tokens, not the site's default."
        ),
    )

    class Meta:
        verbose_name = _("model")
        verbose_name_plural = _("models")
        ordering = ["provider__sort_order", "provider__slug", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="chatmodel_unique_name_per_provider")]

    def __str__(self) -> str:
        return self.route_name

    @property
    def route_name(self) -> str:
        """How the model is named on the websocket and the /v1 API: `<provider>/<model>`."""
        return f"{self.provider.slug}/{self.name}"

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def description(self) -> str:
        """The description in the current language, else the other one."""
        if (get_language() or "").startswith("zh"):
            return self.description_zh or self.description_en
        return self.description_en or self.description_zh


class ModelPrice(models.Model):
    """A model's price from `effective_from` on. Old rows are kept: a request is billed at
    the price in force when it started."""

    class Currency(models.TextChoices):
        CNY = "CNY", _("Chinese yuan (CNY)")
        USD = "USD", _("US dollar (USD)")

    model = models.ForeignKey(ChatModel, on_delete=models.CASCADE, related_name="prices", verbose_name=_("model"))
    input_per_million = models.DecimalField(
        _("input price per million tokens"), max_digits=12, decimal_places=6, validators=PRICE_BOUNDS
    )
    output_per_million = models.DecimalField(
        _("output price per million tokens"), max_digits=12, decimal_places=6, validators=PRICE_BOUNDS
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.CNY)
    effective_from = models.DateTimeField(_("effective from"), validators=SANE_MOMENTS)

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="modelprice_unique_start_per_model")
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.input_per_million}/{self.output_per_million} {self.currency}"


class ModelFallback(models.Model):
    """When `model` fails before its first chunk, try `fallback` next (in `position` order),
    optionally with a specific credential."""

    model = models.ForeignKey(ChatModel, on_delete=models.CASCADE, related_name="fallbacks", verbose_name=_("model"))
    position = models.PositiveSmallIntegerField(_("position"), default=1)
    fallback = models.ForeignKey(
        ChatModel, on_delete=models.CASCADE, related_name="+", verbose_name=_("fallback model")
    )
    credential = models.ForeignKey(
        "Credential",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("credential"),
        help_text=_("Leave empty to choose the key as usual (user, class, site)."),
    )

    class Meta:
        verbose_name = _("fallback route")
        verbose_name_plural = _("fallback routes")
        ordering = ["model", "position", "id"]

    def __str__(self) -> str:
        return f"{self.model} -> {self.fallback}"


class ClassModelAccess(models.Model):
    """Which models a class's students may pick, and the one their chat page preselects.

    Its own row beside accounts.Classroom (as billing's QuotaPolicy is), not fields on it:
    accounts sits below providers and must not point at its tables. A class without a row
    allows every enabled model and has no default. The rule that reads it is
    selectors.classroom_allows_model."""

    classroom = models.OneToOneField(
        "accounts.Classroom", on_delete=models.CASCADE, related_name="model_access", verbose_name=_("class")
    )
    allowed_models = models.ManyToManyField(
        ChatModel,
        blank=True,
        related_name="+",
        verbose_name=_("allowed models"),
        help_text=_("Empty: every enabled model."),
    )
    default_model = models.ForeignKey(
        ChatModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("default model")
    )
    compare_enabled = models.BooleanField(
        _("side by side"),
        default=True,
        help_text=_("Students may send one question to several models at once and compare the answers."),
    )

    class Meta:
        verbose_name = _("models of a class")
        verbose_name_plural = _("models of classes")

    def __str__(self) -> str:
        return str(self.classroom)


class Credential(models.Model):
    """An API key, sealed with AES-GCM. The ciphertext is bound to this row's `public_id`,
    its provider and its base URL: copied into another row, or with the URL changed, it no
    longer opens."""

    class Scope(models.TextChoices):
        SITE = "site", _("Site")
        CLASS = "class", _("Class")
        USER = "user", _("Personal")

    class CheckResult(models.TextChoices):
        WORKS = "works", _("works")
        REJECTED = "rejected", _("rejected")
        UNREACHABLE = "unreachable", _("unreachable")
        RATE_LIMITED = "rate_limited", _("rate limited")
        ERROR = "error", _("error")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FAILING = "failing", _("Rejected by the provider")
        REVOKED = "revoked", _("Revoked")

    public_id = models.UUIDField(_("public id"), unique=True, editable=False)
    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="credentials", verbose_name=_("provider")
    )
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credentials",
        verbose_name=_("owner"),
    )
    classroom = models.ForeignKey(
        "accounts.Classroom",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="credentials",
        verbose_name=_("class"),
    )
    label = models.CharField(_("label"), max_length=100, blank=True)
    # Empty: the provider's own base URL.
    base_url = models.CharField(_("base URL"), max_length=500, blank=True)
    sealed = models.BinaryField(_("sealed key"), editable=False)
    kek_id = models.CharField(_("master key id"), max_length=16, editable=False)
    last4 = models.CharField(_("last four characters"), max_length=4, editable=False)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    last_check_result = models.CharField(_("last check"), max_length=16, choices=CheckResult.choices, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("credential")
        verbose_name_plural = _("credentials")
        ordering = ["provider__sort_order", "scope", "-created_at"]
        indexes = [models.Index(fields=["provider", "scope", "status"], name="credential_lookup")]

    def __str__(self) -> str:
        return f"{self.provider.slug} {self.get_scope_display()} …{self.last4}"

    @property
    def masked(self) -> str:
        return f"…{self.last4}"

    # What the key pages show. The stored status decides routing: a key the provider
    # rejected is FAILING and skipped. A test that could not reach the provider, or got an
    # error from it, says nothing against the key (an outage, a wrong base URL), so the key
    # stays in routing; but the page must not keep calling it usable until a test works.
    _SHOWN_AFTER_CHECK = {
        CheckResult.UNREACHABLE: _("Provider not reachable at the last test"),
        CheckResult.ERROR: _("Provider error at the last test"),
    }

    @property
    def shown_status(self) -> str:
        """`active`, `failing`, `revoked`, or the last test's `unreachable` / `error`."""
        if self.status == self.Status.ACTIVE and self.last_check_result in self._SHOWN_AFTER_CHECK:
            return self.last_check_result
        return self.status

    @property
    def shown_status_label(self) -> str:
        shown = self.shown_status
        return str(self._SHOWN_AFTER_CHECK[shown]) if shown in self._SHOWN_AFTER_CHECK else self.get_status_display()
