"""Reads for conversations. Every lookup a user can influence is scoped to that user."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.models import User
from apps.billing.models import LedgerEntry

from .models import Conversation, Message

# Replies that carry text the model should see again as context.
_CONTEXT_REPLY_STATUSES = (Message.Status.COMPLETE, Message.Status.STOPPED, Message.Status.INTERRUPTED)


def conversation_list_for_user(*, user: User, search: str = "") -> QuerySet[Conversation]:
    """The user's conversations (not deleted), newest first; `search` matches the title or
    any message."""
    conversations = Conversation.objects.filter(owner=user, deleted_at__isnull=True).select_related("model__provider")
    search = search.strip()
    if search:
        conversations = conversations.filter(
            Q(title__icontains=search) | Q(messages__content__icontains=search)
        ).distinct()
    return conversations


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    """The user's own conversation; 404 for anyone else's, a deleted or a missing one."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id, owner=user, deleted_at__isnull=True)
        .select_related("model__provider", "classroom")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def conversation_messages(*, conversation: Conversation) -> list[Message]:
    """The conversation's messages, oldest first, each reply with its ledger row as `bill`
    (None: not billed, or still streaming) for the footer's cost breakdown. Two queries."""
    messages = list(conversation.messages.select_related("model__provider").order_by("id"))
    request_ids = [message.request_id for message in messages if message.is_reply and message.request_id]
    bills = {
        entry.request_id: entry
        for entry in LedgerEntry.objects.filter(request_id__in=request_ids, kind=LedgerEntry.Kind.CHARGE)
    }
    for message in messages:
        message.bill = bills.get(message.request_id) if message.is_reply else None
    return messages


def conversation_prompt_history_before_last_question(
    *, conversation: Conversation
) -> tuple[list[dict[str, str]], str | None]:
    """For "regenerate": the history before the last question, and that question."""
    history = conversation_prompt_history(conversation=conversation)
    while history and history[-1]["role"] != Message.Role.USER:
        history.pop()
    if not history:
        return [], None
    return history[:-1], history[-1]["content"]


def conversation_get_for_teacher(*, teacher: User, conversation_id: int) -> Conversation:
    """A student's conversation, for a teacher of its class when the class lets teachers
    read conversations; 404 otherwise."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id, classroom__teachers=teacher, classroom__teacher_can_read=True)
        .select_related("owner", "classroom", "model__provider")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def conversations_of_student_for_teacher(
    *, teacher: User, classroom_id: int, student_id: int
) -> QuerySet[Conversation]:
    return Conversation.objects.filter(
        classroom_id=classroom_id, classroom__teachers=teacher, classroom__teacher_can_read=True, owner_id=student_id
    ).order_by("-updated_at")


def conversation_prompt_history(*, conversation: Conversation) -> list[dict[str, str]]:
    """What the model is shown of the conversation so far, oldest first."""
    rows = conversation.messages.order_by("id").values_list("role", "content", "status")
    history: list[dict[str, str]] = []
    for role, content, status in rows:
        if role == Message.Role.ASSISTANT and (status not in _CONTEXT_REPLY_STATUSES or not content):
            continue
        history.append({"role": role, "content": content})
    return history
