from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.billing.models import LedgerEntry


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations", verbose_name=_("owner")
    )
    classroom = models.ForeignKey(
        "accounts.Classroom",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("class"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    model = models.ForeignKey(
        "providers.ChatModel", on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("last model")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Deleting hides a conversation from its owner; the messages and the ledger stay.
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    # The version its owner last chose with the versions switcher: the page opens on the
    # branch through it. None (reset by every new turn): the branch of the latest message.
    shown_message_id = models.BigIntegerField(_("version shown"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"], name="conversation_owner_recent")]

    def __str__(self) -> str:
        return self.title or _("New conversation")


class Message(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system", _("System")
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")

    class Status(models.TextChoices):
        STREAMING = "streaming", _("Streaming")
        COMPLETE = "complete", _("Complete")
        STOPPED = "stopped", _("Stopped")
        INTERRUPTED = "interrupted", _("Interrupted")
        FAILED = "failed", _("Failed")

    # The same vocabulary as the ledger: where a reply's token counts came from.
    UsageSource = LedgerEntry.UsageSource
    UsageReview = LedgerEntry.UsageReview

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", verbose_name=_("conversation")
    )
    # The message this one follows: a reply's question; a question's reply before it (None:
    # the conversation's first question). A conversation is a tree: a regenerated reply is a
    # second child of its question, an edited question a second child of the reply before
    # it. The page and the model see one branch (selectors.branch_of).
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("follows")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    content = models.TextField(_("content"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.COMPLETE)
    model = models.ForeignKey(
        "providers.ChatModel", on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("model")
    )
    # The route actually used (after any failover) and the key's scope, for the reply's
    # footer and the ledger.
    route_name = models.CharField(_("route"), max_length=300, blank=True)
    credential_scope = models.CharField(_("key scope"), max_length=16, blank=True)
    credential = models.ForeignKey(
        "providers.Credential",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("key"),
    )
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(_("completion tokens"), null=True, blank=True)
    usage_source = models.CharField(_("usage source"), max_length=16, choices=UsageSource.choices, blank=True)
    # As on the reply's ledger row; `unsettled` only here (settling failed, so there is no row).
    usage_review = models.CharField(
        _("usage to review"), max_length=16, choices=UsageReview.choices, blank=True, default=""
    )
    cost = models.DecimalField(_("cost"), max_digits=20, decimal_places=10, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    first_chunk_ms = models.PositiveIntegerField(_("time to first token (ms)"), null=True, blank=True)
    total_ms = models.PositiveIntegerField(_("total time (ms)"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]

    # Its place among its versions (selectors.versions_attach sets them); a message read on
    # its own is shown as its only version. Defaults here, not left missing: a template
    # looking up a missing attribute lists the instance's every name (`dir`) to tell.
    version = 1
    versions = 1
    version_prev: int | None = None
    version_next: int | None = None
    bill: LedgerEntry | None = None  # its cost breakdown's ledger entry, where attached

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    @property
    def is_reply(self) -> bool:
        return self.role == self.Role.ASSISTANT

    @property
    def html(self) -> str:
        """The reply rendered from Markdown and sanitised (see rendering.py)."""
        from .rendering import reply_html

        return reply_html(self.content)

    @property
    def error_text(self) -> str:
        from .errors import upstream_message

        if not self.error_code:
            return ""
        return upstream_message(code=self.error_code, credential_scope=self.credential_scope, kept=bool(self.content))
