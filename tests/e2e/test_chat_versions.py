"""Versions in the browser: a regenerated reply and an edited question show one version at a
time with a ‹ 1/2 › switcher, live and after a reload, on a phone-sized screen too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.conversations.services import turn_begin
from apps.providers.models import ChatModel
from tests.conftest import People
from tests.e2e.conftest import screenshot
from tests.e2e.test_chat_page import AXE, PHONE, open_chat, send
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_regenerated_reply_shows_one_version_at_a_time(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    page = page_for("en-US")
    page.set_viewport_size(PHONE)
    open_chat(page)
    fake_upstream.default = Behaviour(chunks=["The first answer."])
    send(page, "What is a token?")
    page.wait_for_selector(".msg-assistant .msg-meta")
    fake_upstream.default = Behaviour(chunks=["The second answer."])
    page.click("#regenerate")
    page.wait_for_selector(".msg-assistant .versions")

    assert page.locator(".msg-assistant").count() == 1
    assert "The second answer." in page.inner_text(".msg-assistant .msg-body")
    assert page.inner_text(".msg-assistant .version-count") == "2/2"
    screenshot(page, "chat-versions-regenerated-phone")
    live = page.inner_html(".msg-assistant")
    page.reload()
    page.wait_for_selector(".msg-assistant .versions")
    assert page.inner_html(".msg-assistant") == live

    page.evaluate("window.notReloaded = true")
    # The switch is shown in place, then POSTed to be remembered (a GET changes nothing).
    with page.expect_response(lambda response: response.url.endswith("/shown/")) as remembered:
        page.click(".msg-assistant a.version-prev")
    assert remembered.value.status == 204 and remembered.value.request.method == "POST"
    page.wait_for_selector(".msg-assistant .version-count:text('1/2')")
    assert "The first answer." in page.inner_text(".msg-assistant .msg-body")
    assert page.locator(".msg-assistant").count() == 1
    assert page.evaluate("window.notReloaded === true")  # switched in place
    assert "?at=" in page.url
    assert page.evaluate("document.activeElement.classList.contains('version-next')")  # focus stays on the switcher

    # The choice is remembered: the conversation opens on it, until the next turn.
    page.goto(page.url.split("?")[0])
    page.wait_for_selector(".msg-assistant .version-count:text('1/2')")
    assert "The first answer." in page.inner_text(".msg-assistant .msg-body")


def test_editing_a_question_sends_it_again_as_a_new_version(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    page = page_for("en-US")
    open_chat(page)
    fake_upstream.default = Behaviour(chunks=["Answer one."])
    send(page, "First question")
    page.wait_for_selector(".msg-assistant .msg-meta")
    fake_upstream.default = Behaviour(chunks=["Answer two."])
    send(page, "Second question")
    page.locator(".msg-assistant .msg-meta").nth(1).wait_for()

    page.locator(".msg-user .msg-edit").nth(1).click()
    assert page.input_value("#content") == "Second question"
    assert page.is_visible("#editing")
    page.keyboard.press("Escape")  # changed my mind
    assert not page.is_visible("#editing") and page.input_value("#content") == ""
    assert page.locator(".msg.editing").count() == 0
    page.locator(".msg-user .msg-edit").nth(1).click()
    assert page.locator(".msg-user.editing").count() == 1
    fake_upstream.default = Behaviour(chunks=["Answer to the edit."])
    send(page, "Second question, edited")
    page.wait_for_selector(".msg-user .versions")
    page.locator(".msg-assistant .msg-meta").nth(1).wait_for()

    assert page.locator(".msg-user").count() == 2 and page.locator(".msg-assistant").count() == 2
    assert page.inner_text(".msg-user >> nth=1 >> .msg-body") == "Second question, edited"
    assert page.inner_text(".msg-user >> nth=1 >> .version-count") == "2/2"
    assert "Answer to the edit." in page.inner_text(".msg-assistant >> nth=1")
    assert not page.is_visible("#editing")
    assert fake_upstream.chat_requests()[-1].body["messages"][-1]["content"] == "Second question, edited"
    screenshot(page, "chat-versions-edited")

    page.reload()
    page.wait_for_selector(".msg-user .versions")
    assert page.inner_text(".msg-user >> nth=1 >> .version-count") == "2/2"
    page.click(".msg-user a.version-prev")
    page.wait_for_selector(".msg-user .version-count:text('1/2')")
    assert "Second question" == page.inner_text(".msg-user >> nth=1 >> .msg-body")
    assert "Answer two." in page.inner_text(".msg-assistant >> nth=1")


def test_a_deleted_conversation_can_be_undone_from_the_list(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    page = page_for("en-US")
    page.set_viewport_size(PHONE)
    open_chat(page)
    send(page, "keep me after all")
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.click(".confirm-delete summary")
    page.click("#delete-conversation")
    page.wait_for_selector("#undo-delete")
    # chat.js drops ?deleted= once the page is up, so a reload does not offer it again.
    page.wait_for_url(lambda url: "?" not in url)
    assert "keep me after all" not in page.inner_text("#conversation-list")
    screenshot(page, "chat-undo-delete-phone")

    page.click("#undo-delete-button")
    page.wait_for_selector(".msg-user")
    assert "keep me after all" in page.inner_text(".msg-user .msg-body")
    assert "keep me after all" in page.text_content("#conversation-list")


def test_the_conversation_list_is_grouped_by_date_on_a_phone(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    for title, days in [("Older question about tokens and how they are billed", 3), ("Last month", 40)]:
        rows = turn_begin(
            user=people.student,
            conversation=None,
            classroom=people.classroom,
            model=fake_model,
            content=title,
            request_id=f"r-{days}",
        )
        Conversation.objects.filter(pk=rows.conversation.pk).update(updated_at=timezone.now() - timedelta(days=days))
    page = page_for("en-US")
    page.set_viewport_size(PHONE)
    open_chat(page)
    send(page, "A new question today")
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.click("#drawer-toggle")
    page.wait_for_selector("#conversation-list", state="visible")

    labels = page.locator("#conversation-list .group-label").all_inner_texts()
    assert [label.lower() for label in labels[:2]] == ["today", "previous 7 days"] and len(labels) == 3
    assert "A new question today" in page.inner_text('.conversation-group[data-group="today"]')
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.wait_for_timeout(400)  # the drawer slides in
    screenshot(page, "chat-list-grouped-phone")
    page.reload()
    page.click("#drawer-toggle")
    page.wait_for_selector("#conversation-list", state="visible")
    assert page.locator("#conversation-list .group-label").count() == 3


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_versions_edit_and_undo_have_no_serious_accessibility_faults(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any, theme: str
) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make test-setup` installs it (npm ci)")
    page = page_for("en-US", bypass_csp=True, color_scheme=theme)
    open_chat(page)
    send(page, "First question")
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.click("#regenerate")
    page.wait_for_selector(".msg-assistant .versions")
    page.locator(".msg-user .msg-edit").click()
    send(page, "First question, edited")
    page.wait_for_selector(".msg-user .versions")
    page.locator(".msg-user .msg-edit").click()  # the editing bar is showing too
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        (violation["id"], [(node["target"], node["failureSummary"]) for node in violation["nodes"]][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    screenshot(page, f"chat-versions-axe-{theme}")
    assert serious == []
