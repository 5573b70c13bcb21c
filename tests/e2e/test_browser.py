"""In a real browser: a student chats and reloads; a teacher imports a roster and limits
the models; a hostile reply stays inert; the pages in zh-hans and en."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apps.accounts.models import User
from apps.conversations.models import Message
from apps.providers.models import ChatModel
from apps.providers.selectors import classroom_allowed_model_ids
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)


def test_student_chats_watches_the_stream_and_sees_it_after_reload(
    people: People, demo_model: ChatModel, page_for: Any, settings: Any
) -> None:
    settings.DEMO_STREAM_DELAY_MS = 15  # slow enough to watch the reply arrive
    page = page_for("en-US")
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#chat[data-connected=true]")
    page.select_option("#model", "demo/demo-tutor")
    page.fill("#content", "What is a token?")
    page.keyboard.press("Enter")

    page.wait_for_selector(".msg-assistant.streaming")
    partial = page.inner_text(".msg-assistant .msg-body")
    page.wait_for_selector(".msg-assistant .msg-meta", timeout=60_000)
    final = page.inner_text(".msg-assistant .msg-body")
    assert len(final) > len(partial)  # it grew while we watched
    assert "What is a token?" in final
    assert "tokens" in page.inner_text(".msg-assistant .msg-meta")
    screenshot(page, "student-chat-en")

    page.reload()
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert "What is a token?" in page.inner_text(".msg-user")
    assert "demo model" in page.inner_text(".msg-assistant .msg-body")
    assert "/c/" in page.url
    reply = Message.objects.get(role="assistant")
    assert reply.status == "complete" and reply.conversation.owner == people.student
    assert page.dialogs == []


def test_teacher_imports_a_roster_and_limits_the_models(
    people: People, demo_model: ChatModel, page_for: Any, tmp_path: Path
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("username,display name,password\nwangwu,王五,\nzhaoliu,赵六,\n", encoding="utf-8")
    page = page_for("en-US")
    log_in(page, "teacher_wang", PASSWORD)
    page.goto(f"/classes/{people.classroom.pk}/roster/")
    page.set_input_files("#id_file", str(roster))
    with page.expect_download() as download_info:
        page.click("#roster-import button[type=submit]")
    downloaded = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    assert "wangwu" in downloaded and "zhaoliu" in downloaded
    password = downloaded.splitlines()[1].split(",")[2]
    assert User.objects.get(username="wangwu").check_password(password)

    page.goto(f"/classes/{people.classroom.pk}/roster/")
    assert "wangwu" in page.inner_text("#roster")
    screenshot(page, "teacher-roster")

    page.goto(f"/classes/{people.classroom.pk}/")
    page.click(f"a[href='/classes/{people.classroom.pk}/models/']")
    page.check(f"#class-models-form input[name=allowed_models][value='{demo_model.pk}']")
    page.click("#class-models-form button[type=submit]")
    page.wait_for_selector(".flash")
    assert classroom_allowed_model_ids(classroom=people.classroom) == {demo_model.pk}
    screenshot(page, "teacher-class-models")

    student = page_for("en-US")
    log_in(student, "wangwu", password)
    student.wait_for_selector("#composer")
    options = student.eval_on_selector_all("#model option", "els => els.map(e => e.value)")
    assert options == ["demo/demo-tutor"]


def test_a_hostile_reply_does_not_run(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(
        chunks=[
            "Look: <script>window.__pwned = 1; alert('xss')</script>",
            '<img src=x onerror="window.__pwned = 2; alert(1)">',
            " [click](javascript:alert(3)) <b onmouseover=alert(4)>bold</b>",
            "\n\n```js\nconsole.log('code')\n```\n",
        ]
    )
    page = page_for("en-US")
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#chat[data-connected=true]")
    page.select_option("#model", "fakeai/fake-model")
    page.fill("#content", "say something nasty")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg-assistant .msg-meta")
    for _ in range(2):
        body = page.locator(".msg-assistant .msg-body")
        assert body.locator("script, img, iframe, [onerror], [onmouseover]").count() == 0
        assert body.locator("a[href^='javascript']").count() == 0
        assert page.evaluate("window.__pwned === undefined")
        assert body.locator("pre").count() == 1 and page.locator("button.copy").count() == 1
        page.reload()
        page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.dialogs == []
    screenshot(page, "hostile-reply")


@pytest.mark.parametrize(
    ("locale", "texts"),
    [
        ("zh-CN", ["登录", "新对话", "发送"]),
        ("en-US", ["Log in", "New conversation", "Send"]),
    ],
)
def test_pages_in_chinese_and_english(
    people: People, demo_model: ChatModel, page_for: Any, locale: str, texts: list[str]
) -> None:
    page = page_for(locale)
    page.goto("/accounts/login/")
    assert texts[0] in page.inner_text("h1")
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#composer")
    body = page.inner_text("body")
    assert texts[1] in body and texts[2] in body
    screenshot(page, f"chat-{locale}")


def test_language_switcher_and_phone_sized_screen(people: People, demo_model: ChatModel, page_for: Any) -> None:
    page = page_for("en-US", viewport={"width": 390, "height": 844})
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#composer")
    page.wait_for_load_state("load")  # base.js (the switcher's autosubmit) runs at the end of the body
    page.click("#menu-toggle")  # on a phone the header is one line; its links open from a menu
    page.select_option("#language-select", "zh-hans")
    page.wait_for_selector("#send:has-text('发送')")  # the conversation list is in the closed drawer
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400  # nothing forces sideways scrolling
    screenshot(page, "chat-phone-zh")
