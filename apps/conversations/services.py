"""Writes for conversations: opening a turn and closing it.

A turn writes twice: once when it begins (the student's message and the reply's row, so the
reply has an id to stream under) and once when it ends. Nothing is written per chunk.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, User
from apps.billing.models import Hold, LedgerEntry
from apps.billing.services import ReplyUsage, hold_release, hold_settle
from apps.providers.models import ChatModel
from webchat.errors import ErrorCode
from webchat.plainsql import insert, select, update

from .models import Conversation, Message

logger = logging.getLogger(__name__)

TITLE_CHARS = 60
# turn_begin's default parent: the conversation's latest message.
LATEST = object()


@dataclass(frozen=True)
class TurnRows:
    conversation: Conversation
    user_message: Message | None
    reply: Message


# Part of the turn's one transaction (with the hold): no savepoint of its own to pay for.
@transaction.atomic(savepoint=False)
def turn_begin(
    *,
    user: User,
    conversation: Conversation | None,
    classroom: Classroom | None,
    model: ChatModel,
    content: str,
    request_id: str,
    ask_again: bool = False,
    parent_id: int | None | object = LATEST,
) -> TurnRows:
    """Record the student's message and an empty reply in state `streaming`.

    `parent_id` is the message the question follows (None: the first question; LATEST: the
    conversation's latest message, read here). With `ask_again`, no question is written:
    `parent_id` is the question answered again, and the reply becomes its newest version.

    Side effects: a Conversation (when `conversation` is None), one or two Message rows.
    """
    if conversation is None:
        title = title_clean(content)[:TITLE_CHARS]
        conversation = insert(Conversation(owner=user, classroom=classroom, title=title, model=model))
    else:
        conversation.model = model
        conversation.shown_message_id = None  # a new turn is what the page opens on next
        conversation.updated_at = timezone.now()
        update(
            Conversation,
            {"id": conversation.pk},
            model_id=model.pk,
            shown_message_id=None,
            updated_at=conversation.updated_at,
        )
    if parent_id is LATEST:
        latest = conversation.messages.order_by("-id").first()
        if ask_again:
            while latest is not None and latest.role != Message.Role.USER:
                latest = latest.parent
        parent_id = latest.pk if latest else None
    assert parent_id is None or isinstance(parent_id, int)
    reply = Message(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=model,
        route_name=model.route_name,
        request_id=request_id,
    )
    if ask_again:
        user_message = None
        reply.parent_id = parent_id
    else:
        user_message = insert(
            Message(
                conversation=conversation,
                role=Message.Role.USER,
                content=content,
                request_id=request_id,
                parent_id=parent_id,
            )
        )
        reply.parent = user_message  # the reply points at its question: a second INSERT
    insert(reply)
    return TurnRows(conversation=conversation, user_message=user_message, reply=reply)


@dataclass(frozen=True)
class TurnOutcome:
    """How a turn ended: the reply's text, the fault that ended it ("" for none) and what
    it used, as billing records it (the reply row is written from the same record)."""

    content: str
    error_code: str
    usage: ReplyUsage


@transaction.atomic(savepoint=False)  # inside turn_finish: part of its transaction
def request_settle(*, request_id: str, outcome: TurnOutcome) -> LedgerEntry | None:
    """Settle a request's hold into the ledger from its outcome: an API request's only
    record, and a chat turn's bill (turn_finish). Idempotent (a second settle writes no
    second row). Should settling fail all the same, the hold is released rather than left to
    block the quota until holds expire, and None is returned (logged)."""
    try:
        with transaction.atomic():  # a savepoint: a failed settle leaves nothing half-written
            return hold_settle(request_id=request_id, usage=outcome.usage)
    except Exception:
        logger.exception("settling %s failed; its hold is released", request_id)
        hold_release(request_id=request_id)
        return None


@transaction.atomic
def turn_finish(*, reply_id: int, request_id: str, outcome: TurnOutcome) -> Message:
    """Write the reply as it ended (complete, stopped, interrupted or failed) and settle its
    billing hold into the ledger, in one transaction.

    Side effects: the reply's Message row updated once; the conversation's `updated_at`;
    hold_settle's (Hold, counters, LedgerEntry). Only a reply still `streaming` is written
    and settling is idempotent, so finishing twice changes nothing. The reply carries the
    counts the ledger billed (bounded there). Should settling fail all the same, the reply is
    still saved, flagged `unsettled`, and its hold released (hold_release), not left to block
    the quota and lose the text until holds expire.
    """
    entry = request_settle(request_id=request_id, outcome=outcome)
    if entry is None:
        billed = {
            "cost": None,
            "currency": "",
            "prompt_tokens": None,
            "completion_tokens": None,
            "usage_review": Message.UsageReview.UNSETTLED,
        }
    else:
        billed = {
            "cost": entry.cost_billing,
            "currency": entry.billing_currency,
            "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens,
            "usage_review": entry.usage_review,
        }
    usage = outcome.usage
    # Every turn writes and shows it: plain SQL (webchat/plainsql.py).
    written = update(
        Message,
        {"id": reply_id, "status": Message.Status.STREAMING},
        **billed,
        model_id=usage.model_id,
        content=outcome.content,
        status=usage.status,
        route_name=usage.route_name,
        credential_scope=usage.credential_scope,
        credential_id=usage.credential_id,
        usage_source=usage.usage_source,
        error_code=outcome.error_code,
        first_chunk_ms=usage.first_chunk_ms,
        total_ms=usage.total_ms,
        finished_at=timezone.now(),
    )
    if written:
        (reply,) = written
        update(Conversation, {"id": reply.conversation_id}, updated_at=timezone.now())
    else:  # finished already: as it was written then
        (reply,) = select(Message, {"id": reply_id})
    reply.bill = entry  # the footer's cost breakdown, as conversation_messages attaches it
    return reply


def turns_expire_stale(*, now: datetime | None = None) -> int:
    """Replies still `streaming` long after any call could have ended belong to a worker
    that died: label them interrupted with what is known (nothing was written per chunk, so
    no text) and settle their holds for the counted prompt. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HOLD_EXPIRY_SECONDS)
    stale = Message.objects.filter(
        role=Message.Role.ASSISTANT, status=Message.Status.STREAMING, created_at__lt=cutoff
    ).select_related("model__provider")
    count = 0
    for reply in stale:
        hold = Hold.objects.filter(request_id=reply.request_id).first()
        count += 1
        if hold is None:  # nothing was reserved, so nothing to settle: just label it
            Message.objects.filter(pk=reply.pk, status=Message.Status.STREAMING).update(
                status=Message.Status.INTERRUPTED, error_code=ErrorCode.WORKER_LOST, finished_at=now
            )
            continue
        prompt_tokens = hold.prompt_tokens
        model = reply.model
        turn_finish(
            reply_id=reply.pk,
            request_id=reply.request_id,
            outcome=TurnOutcome(
                content="",
                error_code=ErrorCode.WORKER_LOST,
                usage=ReplyUsage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=0,
                    usage_source=Message.UsageSource.COUNTED,
                    estimated=True,
                    status=Message.Status.INTERRUPTED,
                    route_name=reply.route_name,
                    provider_slug=model.provider.slug if model else "",
                    credential_id=reply.credential_id,
                    credential_scope=reply.credential_scope,
                    first_chunk_ms=None,
                    total_ms=int((now - reply.created_at).total_seconds() * 1000),
                    model_id=reply.model_id,
                ),
            ),
        )
    return count


# Characters a title never keeps: controls (NUL cannot even be stored in PostgreSQL),
# unpaired surrogates, and the bidirectional overrides and isolates that make a title
# read as something else ("report\u202egnp.exe" shows as "reportexe.png").
_TITLE_DROPPED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def title_clean(text: str) -> str:
    """A conversation's title from text a student typed: one line, without the characters above."""
    return " ".join(_TITLE_DROPPED.sub("", text).split())


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title_clean(title)[:200]
    if not title:
        raise ValidationError({"title": _("Give the conversation a title.")})
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_version_show(*, conversation: Conversation, message_id: int) -> bool:
    """Remember the version its owner chose with the versions switcher: the conversation
    opens on the branch through `message_id` until the next turn. False (nothing written)
    when the message is not in this conversation. One query; `updated_at` is left alone (the
    list's order is the last turn's, not the last look)."""
    in_conversation = Message.objects.filter(pk=message_id, conversation_id=OuterRef("pk"))
    chosen = Conversation.objects.filter(Exists(in_conversation), pk=conversation.pk).update(
        shown_message_id=message_id
    )
    if chosen:
        conversation.shown_message_id = message_id
    return bool(chosen)


def conversation_delete(*, conversation: Conversation) -> None:
    """Hide it from its owner. Messages and the ledger stay (billing and audits need them),
    and the owner may undo it for a while (conversation_restore)."""
    conversation.deleted_at = timezone.now()
    conversation.save(update_fields=["deleted_at"])


def conversation_restore(*, conversation: Conversation) -> Conversation:
    """Undo a delete: the conversation is back in its owner's list (as it was: `updated_at`
    is kept, so it returns to its place). Side effects: the row's `deleted_at` cleared."""
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=None)
    conversation.deleted_at = None
    return conversation
