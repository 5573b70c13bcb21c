"""In a real browser: the chat page follows its socket's close codes."""

from __future__ import annotations

from typing import Any

import pytest

from apps.providers.models import ChatModel
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_logging_out_in_another_tab_sends_the_chat_tab_to_the_login_page(
    people: People, demo_model: ChatModel, page_for: Any
) -> None:
    chat = page_for("en-US")
    log_in(chat, "xiaoming", PASSWORD)
    chat.wait_for_selector("#chat[data-connected=true]")
    other_tab = chat.context.new_page()
    other_tab.goto("/")

    other_tab.click("form[action='/accounts/logout/'] button")

    # The socket closes with 4401; the page reloads and, signed out, lands on the login form.
    chat.wait_for_url("**/accounts/login/**")
    assert chat.locator("#id_username").count() == 1
    assert chat.dialogs == []
