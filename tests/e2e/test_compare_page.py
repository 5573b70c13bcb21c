"""Side by side in a real browser, at phone and desktop size, in both languages: a student
sends one question to two models, watches both answers stream, sees each one's cost and
goes on with one of them. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.billing.models import LedgerEntry
from apps.conversations.models import Message
from apps.providers.models import ChatModel
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 800}}
LANGUAGES = {"en": ("en-US", "Continue this conversation"), "zh": ("zh-CN", "继续这个对话")}
SECONDS = {"en": r"total \d+\.\d s", "zh": r"总耗时 \d+\.\d 秒"}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_two_models_answer_side_by_side_and_one_can_be_continued(
    people: People, demo_model: ChatModel, fake_model: ChatModel, page_for: Any, size: str, language: str
) -> None:
    locale, continue_label = LANGUAGES[language]
    page = page_for(locale, viewport=SIZES[size])
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/compare/")
    for box in page.locator('input[name="models"]').all():
        box.set_checked(box.get_attribute("value") in (demo_model.route_name, fake_model.route_name))
    page.fill("#compare-content", "What is a token?")
    page.click("#compare-send")
    lanes = page.locator(".lane")
    expect(lanes).to_have_count(2)
    expect(page.locator('.lane[aria-busy="false"]')).to_have_count(2, timeout=30_000)
    expect(page.locator(".lane-facts a")).to_have_count(2)
    expect(page.locator(".lane-facts a").first).to_have_text(continue_label)
    expect(page.locator(".lane-facts").first).to_contain_text(re.compile(SECONDS[language]))  # its unit in its language
    # Each lane shows its saved message as a reload would: tokens and cost in its footer.
    assert LedgerEntry.objects.count() == 2
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
    screenshot(page, f"compare-{size}-{language}")
    page.locator(".lane-facts a").first.click()
    page.wait_for_url("**/c/*/")
    expect(page.locator("#content")).to_be_visible()


@pytest.mark.parametrize("language", LANGUAGES)
def test_one_lane_is_stopped_and_the_other_goes_on(
    people: People, fake_model: ChatModel, fake_upstream: Any, page_for: Any, language: str
) -> None:
    """Each model's panel has its own Stop: a slow one ends, the other answers in full."""
    from apps.providers.catalog import catalog_apply
    from apps.providers.models import ModelPrice, Provider
    from tests.conftest import _fake_provider_entry
    from tests.fake_upstream import Behaviour

    entry = _fake_provider_entry(fake_upstream.base_url)
    entry["models"].append({**entry["models"][0], "name": "fake-model-2", "display_name": "Fake model 2"})
    catalog_apply(entries=[entry], provider_model=Provider, chat_model_model=ChatModel, price_model=ModelPrice)
    fake_upstream.default = Behaviour(chunks=["word "] * 30, delay=0.1)
    page = page_for(LANGUAGES[language][0], viewport=SIZES["phone"])
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/compare/")
    for box in page.locator('input[name="models"]').all():
        box.set_checked(box.get_attribute("value") in ("fakeai/fake-model", "fakeai/fake-model-2"))
    page.fill("#compare-content", "Count slowly")
    page.click("#compare-send")
    expect(page.locator(".lane-stop")).to_have_count(2)
    expect(page.locator(".lane-body").nth(1)).to_contain_text("word")
    screenshot(page, f"compare-lane-stop-phone-{language}")
    page.locator(".lane-stop").nth(1).click()
    expect(page.locator('.lane[aria-busy="false"]')).to_have_count(2, timeout=30_000)
    expect(page.locator(".lane-stop")).to_have_count(0)
    statuses = {m.content.count("word"): m.status for m in Message.objects.filter(role="assistant")}
    assert sorted(statuses.values()) == ["complete", "stopped"]
    assert max(statuses) == 30  # the lane left alone answered in full
