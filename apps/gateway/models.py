"""Personal API keys for the OpenAI-compatible /v1 endpoints."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom


class ApiKey(models.Model):
    """A personal key. Only its SHA-256 hash is kept (the key holds 256 bits of randomness,
    so a plain hash cannot be reversed by guessing), with a prefix to tell keys apart."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(_("prefix"), max_length=16)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})" if self.name else f"{self.prefix}…"

    @property
    def status(self) -> str:
        """Revoked wins over expired: a key someone revoked says so even after its date."""
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    @property
    def status_label(self) -> str:
        return str(self.Status(self.status).label)


class ClassApiAccess(models.Model):
    """Whether a class's students may use the /v1 API with their keys. No row: they may."""

    classroom = models.OneToOneField(
        Classroom, on_delete=models.CASCADE, related_name="api_access", verbose_name=_("class"), primary_key=True
    )
    enabled = models.BooleanField(_("API access"), default=True)
    changed_at = models.DateTimeField(_("changed"), auto_now=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("class API access")
        verbose_name_plural = _("class API access")

    def __str__(self) -> str:
        return f"{self.classroom}: {'on' if self.enabled else 'off'}"


class IdempotentRequest(models.Model):
    """A /v1 request sent with an `Idempotency-Key` header, and its first result. A retry
    with the same key and body within IDEMPOTENCY_WINDOW gets that result again: no second
    call to the provider, no second ledger row (gateway/idempotency.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_one_per_user_key")]
