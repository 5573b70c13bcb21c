"""In a real browser, at phone and desktop size, in both languages: a student creates an API
key, copies it with the copy button, and reads "Use the API"; a teacher opens the class's
API page. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from apps.gateway.models import ApiKey
from apps.gateway.selectors import api_key_user
from apps.gateway.services import api_key_create
from apps.providers.models import ChatModel
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
LANGUAGES = {"en": ("en-US", "Copied"), "zh": ("zh-CN", "已复制")}


def no_sideways_scroll(page: Any) -> None:
    """Nothing wider than the window: the page itself never scrolls sideways (code blocks
    scroll inside their own box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_student_creates_a_key_copies_it_and_reads_the_guide(
    people: People, demo_model: ChatModel, page_for: Any, size: str, language: str
) -> None:
    locale, copied = LANGUAGES[language]
    page = page_for(locale, viewport=SIZES[size], permissions=["clipboard-read", "clipboard-write"])
    log_in(page, "xiaoming", PASSWORD)
    api_key_create(user=people.student, name="lab computer")  # a row already in the list
    page.goto("/api-keys/")
    page.fill("#id_name", "laptop")
    page.fill("#id_expires_in_days", "30")
    page.click("#api-key-form button[type=submit]")
    page.wait_for_selector("#key-created")
    key = page.inner_text("#new-key").strip()
    assert api_key_user(presented=key) == people.student
    page.click("button[data-copy=new-key]")
    expect(page.locator("button[data-copy=new-key]")).to_have_text(copied)
    assert page.evaluate("navigator.clipboard.readText()") == key
    no_sideways_scroll(page)
    screenshot(page, f"api-keys-created-{size}-{language}")

    page.click("#key-created a.button")  # "Done": the list again, without the key
    page.wait_for_selector("#api-keys")
    assert key not in page.content()
    row = ApiKey.objects.get(user=people.student, name="laptop")
    page.click(f"tr[data-key='{row.pk}'] details.confirm summary")
    no_sideways_scroll(page)
    screenshot(page, f"api-keys-list-{size}-{language}")

    page.goto("/api/")
    page.wait_for_selector("#code-python")
    assert row.prefix in page.inner_text("#api-key-prefixes") and key not in page.content()
    page.click("button[data-copy=code-env]")
    expect(page.locator("button[data-copy=code-env]")).to_have_text(copied)
    assert "OPENAI_BASE_URL=" in page.evaluate("navigator.clipboard.readText()")
    no_sideways_scroll(page)
    screenshot(page, f"api-guide-{size}-{language}")
    assert page.dialogs == []


@pytest.mark.parametrize("size", SIZES)
def test_a_teacher_switches_the_api_off_and_revokes_a_key(people: People, page_for: Any, size: str) -> None:
    row, key = api_key_create(user=people.student, name="laptop")
    api_key_create(user=people.classmate, name="homework project")
    page = page_for("zh-CN", viewport=SIZES[size])
    log_in(page, "teacher_wang", PASSWORD)
    page.goto(f"/classes/{people.classroom.pk}/api/")
    page.click("#api-switch button[type=submit]")
    page.wait_for_selector("[data-api=off]")
    page.click(f"tr[data-key='{row.pk}'] details.confirm summary")
    page.click(f"tr[data-key='{row.pk}'] button[type=submit]")
    page.wait_for_selector(f"tr[data-key='{row.pk}'] [data-status=revoked]")
    no_sideways_scroll(page)
    screenshot(page, f"class-api-{size}-zh")
    row.refresh_from_db()
    assert row.revoked_at is not None
