"""The chat page over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import UNDO_DELETE_SECONDS
from apps.conversations.services import conversation_delete, turn_begin
from tests.conftest import People

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(people: People, demo_model):  # type: ignore[no-untyped-def]
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="What is an API key?",
        request_id="r1",
    )
    Message.objects.filter(pk=rows.reply.pk).update(
        content="A secret that identifies you.", status="complete", prompt_tokens=12, completion_tokens=7
    )
    return rows.conversation


def test_login_page_renders_and_a_student_lands_on_the_chat(people: People, client: Client) -> None:
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "xiaoming", "password": "correct-horse-battery-42"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    page = client.get(reverse("home"))
    assert page.status_code == 200
    assert b'id="composer"' in page.content


def test_chat_page_requires_login(client: Client) -> None:
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_chat_page_labels_the_demo_model(people: People, demo_model, client: Client) -> None:
    client.force_login(people.student)
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "demo/demo-tutor" in page
    assert "(demo)" in page


def test_reload_shows_the_whole_conversation(people: People, conversation, client: Client) -> None:
    client.force_login(people.student)
    page = client.get(reverse("conversation", args=[conversation.pk])).content.decode()
    assert "What is an API key?" in page
    assert "A secret that identifies you." in page
    assert "12" in page and "7" in page


def test_student_sees_only_their_own_conversations_in_the_list(people: People, conversation, client: Client) -> None:
    client.force_login(people.classmate)
    page = client.get(reverse("home")).content.decode()
    assert "What is an API key?" not in page


def test_student_cannot_open_another_students_conversation(people: People, conversation, client: Client) -> None:
    client.force_login(people.classmate)
    assert client.get(reverse("conversation", args=[conversation.pk])).status_code == 404
    client.force_login(people.other_student)
    assert client.get(reverse("conversation", args=[conversation.pk])).status_code == 404


def test_missing_conversation_is_404(people: People, client: Client) -> None:
    client.force_login(people.student)
    assert client.get(reverse("conversation", args=[987654])).status_code == 404


def test_chat_page_refuses_post(people: People, client: Client) -> None:
    client.force_login(people.student)
    assert client.post(reverse("home")).status_code == 405


def test_model_output_is_escaped_on_the_page(people: People, demo_model, client: Client) -> None:
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=None,
        model=demo_model,
        content="<script>alert(1)</script>",
        request_id="r2",
    )
    client.force_login(people.student)
    page = client.get(reverse("conversation", args=[rows.conversation.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_deleted_conversation_can_be_undone_by_its_owner(people: People, conversation, client: Client) -> None:
    client.force_login(people.student)
    response = client.post(reverse("conversation-delete", args=[conversation.pk]))
    assert response.status_code == 302 and response["Location"] == f"{reverse('home')}?deleted={conversation.pk}"
    page = client.get(response["Location"]).content.decode()
    assert 'id="undo-delete"' in page and reverse("conversation-restore", args=[conversation.pk]) in page

    restored = client.post(reverse("conversation-restore", args=[conversation.pk]))

    assert restored.status_code == 302 and restored["Location"] == reverse("conversation", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.deleted_at is None
    assert client.get(reverse("conversation", args=[conversation.pk])).status_code == 200


def test_undo_is_only_for_the_owner_by_post_and_soon_after(people: People, conversation, client: Client) -> None:
    conversation_delete(conversation=conversation)
    url = reverse("conversation-restore", args=[conversation.pk])
    client.force_login(people.classmate)
    assert client.post(url).status_code == 404
    assert 'id="undo-delete"' not in client.get(f"{reverse('home')}?deleted={conversation.pk}").content.decode()
    client.force_login(people.student)
    assert client.get(url).status_code == 405
    Conversation.objects.filter(pk=conversation.pk).update(
        deleted_at=timezone.now() - timedelta(seconds=UNDO_DELETE_SECONDS + 1)
    )
    assert client.post(url).status_code == 404
    assert client.post(reverse("conversation-restore", args=[999999])).status_code == 404
    conversation.refresh_from_db()
    assert conversation.deleted_at is not None
