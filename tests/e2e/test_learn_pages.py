"""In a real browser, at phone and desktop size, in both languages: the tokenizer counts as
you type (tokens appear, ids on hover), and a provider page fits the window. Screenshots go
to test-artifacts/ (git-ignored)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.billing.models import ExchangeRate
from apps.providers.tokens import encoding_get
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import ARTIFACTS, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 800}}
LANGUAGES = {"en": "en-US", "zh": "zh-CN"}
TEXT = "你好，世界！Tokens are pieces of text. 🙂👩‍👩‍👧‍👦"


def fits_the_window(page: Any, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width}px wide in a {width}px window"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_tokenizer_shows_tokens_as_you_type(
    people: People, catalog: None, page_for: Any, size: str, language: str
) -> None:
    ExchangeRate.objects.get_or_create(
        from_currency="USD", to_currency="CNY", effective_from=datetime(2020, 1, 1, tzinfo=UTC), defaults={"rate": 7}
    )
    page = page_for(LANGUAGES[language], viewport=SIZES[size])
    refused: list[str] = []
    page.on("console", lambda message: "Content Security Policy" in message.text and refused.append(message.text))
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/learn/tokenizer/?model=openai/gpt-4o-mini")
    page.type("#tok-text", "Hello", delay=20)
    expect(page.locator("#tok-tokens .tok").first).to_be_visible()
    page.fill("#tok-text", TEXT)
    expected = encoding_get("o200k_base").encode(TEXT)
    expect(page.locator("#tok-count")).to_have_text(str(len(expected)))
    ids = page.eval_on_selector_all("#tok-tokens .tok", "boxes => boxes.map(box => Number(box.dataset.id))")
    assert ids == expected
    assert page.locator("#tok-tokens .tok-partial").count() > 0  # the emoji family is split
    assert page.get_attribute("#tok-tokens .tok >> nth=0", "title").startswith("id ")
    # A phone shows no title: a tap describes the token below the boxes.
    page.locator("#tok-tokens .tok >> nth=1").click()
    expect(page.locator("#tok-detail")).to_contain_text(f"id {expected[1]}")
    expect(page.locator("#tok-encoding")).to_have_text("o200k_base")
    expect(page.locator("#tok-exact")).to_have_attribute("data-exact", "yes")
    expect(page.locator("#tok-in-USD")).not_to_have_text("—")
    expect(page.locator("#tok-in-CNY")).not_to_have_text("—")
    fits_the_window(page, SIZES[size]["width"])
    screenshot(page, f"learn-tokenizer-{size}-{language}")

    # Another vendor's model: its tokenizer is not public, so the count is an estimate. (The
    # demo model counts with o200k_base itself: exact.)
    page.goto("/learn/tokenizer/?model=deepseek/deepseek-chat")
    page.fill("#tok-text", TEXT)
    expect(page.locator("#tok-exact")).to_have_attribute("data-exact", "no")
    expect(page.locator("#tok-in-CNY")).not_to_have_text("—")
    assert page.dialogs == [] and refused == []


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_provider_page_fits_the_window(
    people: People, catalog: None, page_for: Any, size: str, language: str
) -> None:
    page = page_for(LANGUAGES[language], viewport=SIZES[size])
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/providers/")
    page.click("tr[data-provider=deepseek] a[href='/providers/deepseek/']")
    page.wait_for_selector("[data-section=changelog]")
    fits_the_window(page, SIZES[size]["width"])
    screenshot(page, f"learn-provider-{size}-{language}")
    for section in ("overview", "pricing", "code", "comparison", "best_practice"):  # one window each, to look at
        page.locator(f"#{section}").scroll_into_view_if_needed()
        page.evaluate(f"document.getElementById('{section}').scrollIntoView()")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"learn-provider-{size}-{language}-{section}.png"))


def test_a_teacher_projects_the_tokenizer(people: People, catalog: None, page_for: Any) -> None:
    page = page_for("zh-CN", viewport={"width": 1366, "height": 800})
    log_in(page, "teacher_wang", PASSWORD)
    page.goto("/learn/tokenizer/")
    page.click("#present-enter")
    page.wait_for_selector("body.presenting")
    page.fill("#tok-text", "大语言模型按 token 计费。")
    expect(page.locator("#tok-tokens .tok").first).to_be_visible()
    assert "teacher_wang" not in page.content() and "Teacher_Wang" not in page.content()
    fits_the_window(page, 1366)
    screenshot(page, "learn-tokenizer-present-zh")

    page.goto("/providers/glm/")
    page.click("#present-enter")
    page.wait_for_selector("body.presenting [data-section=changelog]")
    assert "Teacher_Wang" not in page.content()
    fits_the_window(page, 1366)
    page.screenshot(path=str(ARTIFACTS / "learn-provider-present-zh.png"))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_key_lesson_fits_the_window(people: People, page_for: Any, size: str, language: str) -> None:
    page = page_for(LANGUAGES[language], viewport=SIZES[size])
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/api-keys/")
    expect(page.locator("#key-lesson")).to_have_attribute("open", "")
    page.click("#key-lesson a[href='#api-key-form']")
    fits_the_window(page, SIZES[size]["width"])
    screenshot(page, f"learn-key-lesson-{size}-{language}")
