"""Reads for conversations. Every lookup a user can influence is scoped to that user."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import User

from .models import Conversation, Message

# Replies that carry text the model should see again as context.
_CONTEXT_REPLY_STATUSES = (Message.Status.COMPLETE, Message.Status.STOPPED, Message.Status.INTERRUPTED)


def conversation_list_for_user(*, user: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner=user).select_related("model__provider")


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    """The user's own conversation; 404 for anyone else's or a missing one."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id, owner=user).select_related("model__provider").first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.select_related("model__provider").order_by("id")


def conversation_prompt_history(*, conversation: Conversation) -> list[dict[str, str]]:
    """What the model is shown of the conversation so far, oldest first."""
    rows = conversation.messages.order_by("id").values_list("role", "content", "status")
    history: list[dict[str, str]] = []
    for role, content, status in rows:
        if role == Message.Role.ASSISTANT and (status not in _CONTEXT_REPLY_STATUSES or not content):
            continue
        history.append({"role": role, "content": content})
    return history
