"""The student chat page in a real browser: Markdown rendered (safely) while a reply streams,
nothing typed is ever lost, a phone-sized screen, live equals reloaded, scrolling, dark theme,
and no serious accessibility faults (axe-core from node_modules) in either language."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.billing.models import RateCounter
from apps.billing.services import quota_policy_set
from apps.providers.models import ChatModel
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 800}
CODE_REPLY = [
    "Here is **bold** text and a table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n",
    "```python\n",
    "print('a very long line of code that would push a phone screen sideways if it could, and more')\n",
    "```\n",
    "Done.",
]


def wait_for(page: Any, expression: str, timeout: float = 20.0) -> None:
    """page.wait_for_function evaluates a string, which the page's CSP (no unsafe-eval)
    refuses: poll with evaluate instead."""
    for _ in range(int(timeout / 0.05)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"never true: {expression}")


def open_chat(page: Any, model: str = "fakeai/fake-model") -> None:
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#chat[data-connected=true]")
    page.select_option("#model", model)


def send(page: Any, text: str) -> None:
    page.fill("#content", text)
    page.keyboard.press("Enter")


def test_markdown_is_rendered_while_the_reply_streams(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    # Under 5 s in all: on the PostgreSQL pass the tests' Redis read timeout equals the
    # channel layer's 5 s blocking wait (pyproject.toml), and a socket that heard nothing
    # from the layer for that long could lose its consumer to the race (servers: 30 s).
    fake_upstream.default = Behaviour(chunks=[*CODE_REPLY, *["."] * 10], delay=0.2)
    page = page_for("en-US")
    open_chat(page)
    send(page, "show me markdown")
    page.wait_for_selector(".msg-assistant.streaming .msg-body strong")
    page.wait_for_selector(".msg-assistant.streaming .msg-body pre code.language-python")
    assert page.locator(".msg-assistant.streaming").count() == 1  # still streaming: rendered before chat.done
    assert page.locator(".msg-assistant .msg-meta").count() == 0
    assert "```" not in page.inner_text(".msg-assistant .msg-body")
    assert page.inner_text(".msg-assistant .code-lang") == "python"
    screenshot(page, "chat-streaming-markdown")
    page.wait_for_selector(".msg-assistant .msg-meta")
    live = page.inner_html(".msg-assistant")
    assert page.locator(".msg-assistant .msg-body strong").count() == 1
    assert page.locator(".msg-assistant button.copy").count() == 1
    page.reload()
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.inner_html(".msg-assistant") == live  # the server's rendering, live and reloaded


def test_a_hostile_reply_stays_inert_while_it_streams(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(
        chunks=[
            "Look: <script>window.__pwned = 1</script>",
            '<img src=x onerror="window.__pwned = 2">',
            ' <a href="javascript:window.__pwned=3">a</a> [click](javascript:window.__pwned=4)',
            ' <b onmouseover="window.__pwned=5">bold</b> <iframe src="/"></iframe>',
            '<svg onload="window.__pwned=6"></svg> <p style="color:red" class="evil">x</p>',
            *[" more"] * 8,
        ],
        delay=0.25,
    )
    page = page_for("en-US")
    open_chat(page)
    send(page, "say something nasty")
    page.wait_for_selector(".msg-assistant.streaming .msg-body p")
    wait_for(page, "document.querySelector('.msg-assistant .msg-body').textContent.includes('more')")
    body = page.locator(".msg-assistant .msg-body")
    assert page.locator(".msg-assistant.streaming").count() == 1
    assert body.locator("script, img, iframe, svg, [onerror], [onmouseover], [style], p[class]").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.evaluate("window.__pwned === undefined")
    assert page.dialogs == []


def test_enter_while_a_reply_streams_keeps_the_text_and_sends_it_later(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(chunks=["one ", "two ", "three ", "four ", "five"], delay=0.3)
    page = page_for("en-US")
    open_chat(page)
    send(page, "first question")
    page.wait_for_selector(".msg-assistant.streaming")
    send(page, "follow-up question")
    assert page.input_value("#content") == "follow-up question"
    assert page.is_visible("#stop") and not page.is_visible("#send")
    assert page.locator(".msg-user").count() == 1
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.is_visible("#send") and not page.is_visible("#stop")
    page.keyboard.press("Enter")
    page.locator(".msg-assistant .msg-meta").nth(1).wait_for()
    assert page.locator(".msg-user").count() == 2
    assert page.input_value("#content") == ""


@pytest.mark.parametrize("refusal", ["content_too_long", "model_not_allowed", "quota_exceeded", "rate_limited"])
def test_a_refused_message_comes_back_to_the_box(
    people: People, fake_model: ChatModel, demo_model: ChatModel, page_for: Any, refusal: str, settings: Any
) -> None:
    if refusal == "quota_exceeded":
        settings.CHAT_DEFAULT_MAX_TOKENS = 100
        quota_policy_set(classroom=people.classroom, period="week", student_token_limit=50)
    if refusal == "rate_limited":
        quota_policy_set(classroom=people.classroom, period="week", rpm=1)
        # The minute's one request already taken: this minute's and the next two (the limit
        # counts per calendar minute, and the test may cross into the next one).
        minute = timezone.now().replace(second=0, microsecond=0)
        for ahead in range(3):
            RateCounter.objects.create(
                scope_key=f"u{people.student.pk}", window_start=minute + timedelta(minutes=ahead), requests=1
            )
    page = page_for("en-US")
    open_chat(page)
    if refusal == "rate_limited":
        text = "a question over this minute's one"
    elif refusal == "content_too_long":
        text = "x" * 8001
    elif refusal == "quota_exceeded":
        text = "a question over the quota"
    else:
        text = "a question for a model the class does not offer"
        page.evaluate(
            "() => { const o = new Option('nowhere/none', 'nowhere/none', true, true); document.getElementById('model').add(o); }"
        )
    sent_before = page.locator(".msg-user").count()
    send(page, text)
    page.wait_for_selector("#chat-error:not([hidden])")
    assert page.input_value("#content") == text
    assert page.locator(".msg-user").count() == sent_before
    assert page.is_visible("#send") and not page.is_visible("#stop")
    if refusal == "rate_limited":
        assert "minute" in page.inner_text("#chat-error") or "again" in page.inner_text("#chat-error")
    if refusal == "quota_exceeded":  # "Details: /usage/" is a link to the usage page
        assert page.get_attribute("#chat-error a", "href") == "/usage/"
    screenshot(page, f"chat-refused-{refusal}")
    page.reload()
    page.wait_for_selector("#chat[data-connected=true]")
    assert page.input_value("#content") == text  # and the draft outlives a reload
    assert page.locator(".msg-user").count() == sent_before


def test_a_draft_survives_a_reload_and_goes_when_sent(people: People, fake_model: ChatModel, page_for: Any) -> None:
    page = page_for("en-US")
    open_chat(page)
    page.fill("#content", "half a thought")
    page.wait_for_timeout(500)
    page.reload()
    page.wait_for_selector("#chat[data-connected=true]")
    assert page.input_value("#content") == "half a thought"
    assert page.evaluate("document.activeElement.id") == "content"  # focus starts in the box
    page.select_option("#model", "fakeai/fake-model")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.locator("#regenerate").is_visible()  # at once, not after a reload
    page.reload()
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.input_value("#content") == ""


def test_a_failed_reply_looks_the_same_live_and_reloaded(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(status=500)
    page = page_for("en-US")
    open_chat(page)
    send(page, "this will fail")
    page.wait_for_selector(".msg-assistant .badge-failed", timeout=60_000)
    live = page.inner_text(".msg-assistant")
    page.reload()
    page.wait_for_selector(".msg-assistant .badge-failed")
    assert page.inner_text(".msg-assistant") == live


@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_the_page_fits_the_screen_with_the_composer_in_view(
    people: People,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    page_for: Any,
    size: str,
    viewport: dict[str, int],
) -> None:
    fake_upstream.default = Behaviour(chunks=[*CODE_REPLY, *[f"\n\nline {n}" for n in range(40)]])
    page = page_for("en-US", viewport=viewport)
    open_chat(page)

    def composer_in_view() -> None:
        box = page.locator("#composer").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], page.evaluate(
            "[document.scrollingElement.scrollTop, document.scrollingElement.scrollHeight, innerHeight,"
            " [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().bottom > innerHeight + 1)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.getBoundingClientRect().bottom).slice(0, 8)]"
        )
        send_box = page.locator("#send").bounding_box()
        assert send_box["x"] + send_box["width"] <= viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    composer_in_view()  # an empty chat
    send(page, "a long answer with code please")
    page.wait_for_selector(".msg-assistant .msg-meta")
    composer_in_view()  # a long one
    pre = page.locator(".msg-assistant pre").bounding_box()
    assert pre["x"] + pre["width"] <= viewport["width"]  # code scrolls inside itself
    copy = page.locator(".msg-assistant button.copy").bounding_box()
    assert copy["height"] >= 44 and copy["width"] >= 44
    screenshot(page, f"chat-code-{size}")
    if size == "phone":
        assert not page.is_visible("#conversation-list")
        page.click("#drawer-toggle")
        page.wait_for_selector("#conversation-list", state="visible")
        page.wait_for_timeout(400)  # the drawer slides in
        screenshot(page, "chat-drawer-phone")
        page.keyboard.press("Escape")
        page.wait_for_selector("#conversation-list", state="hidden")
        page.click("#menu-toggle")  # the header's links, folded into one line's menu
        page.wait_for_selector("#language-select", state="visible")
        for box in page.eval_on_selector_all(".topnav > *", "els => els.map(e => e.getBoundingClientRect().toJSON())"):
            assert box["right"] <= viewport["width"] and box["height"] >= 44
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, "chat-menu-phone")
        page.click("#menu-toggle")
    # Reopened: at the latest reply, not the top.
    page.reload()
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.wait_for_timeout(200)
    assert (
        page.evaluate("(m => m.scrollHeight - m.scrollTop - m.clientHeight)(document.getElementById('messages'))") < 50
    )
    composer_in_view()


def test_scrolling_up_while_a_reply_streams_is_not_undone(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(chunks=[f"line {n}\n\n" for n in range(60)], delay=0.05)
    page = page_for("en-US", viewport={"width": 800, "height": 600})
    open_chat(page)
    send(page, "a long one")
    wait_for(page, "document.querySelector('.msg-assistant') && document.getElementById('messages').scrollTop > 100")
    page.evaluate("document.getElementById('messages').scrollTop = 0")
    page.wait_for_selector("#jump-latest:not([hidden])")
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.evaluate("document.getElementById('messages').scrollTop") < 50  # left where the reader went
    page.click("#jump-latest")
    assert (
        page.evaluate("(m => m.scrollHeight - m.scrollTop - m.clientHeight)(document.getElementById('messages'))") < 50
    )


def test_an_empty_search_says_nothing_matches(people: People, fake_model: ChatModel, page_for: Any) -> None:
    page = page_for("en-US")
    open_chat(page)
    send(page, "a first conversation")
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.goto("/?q=zebra-crossing")
    assert "No conversations match" in page.inner_text("#conversation-list")


def test_delete_asks_first(people: People, fake_model: ChatModel, page_for: Any) -> None:
    page = page_for("en-US")
    open_chat(page)
    assert not page.is_visible("#conversation-tools")  # nothing to rename or delete yet
    send(page, "delete me")
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.is_visible("#conversation-tools")  # at once, not after a reload
    assert not page.is_visible("#delete-conversation")
    page.click(".confirm-delete summary")
    page.click("#delete-conversation")
    page.wait_for_url("**/")
    assert "delete me" not in page.inner_text("#conversation-list")


def test_dark_theme_is_remembered(people: People, fake_model: ChatModel, page_for: Any) -> None:
    page = page_for("en-US", color_scheme="light")
    open_chat(page)
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.click("#theme-toggle")
    assert page.get_attribute("#theme-toggle", "title") == "Theme: dark"
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    dark = page_for("en-US", color_scheme="dark")
    open_chat(dark)
    assert dark.evaluate("document.documentElement.dataset.theme") == "dark"  # the system's choice by default


def test_the_finished_reply_is_announced_once(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(chunks=["Hello", " there"], delay=0.2)
    page = page_for("en-US")
    open_chat(page)
    assert page.get_attribute("#messages", "aria-live") == "off"
    send(page, "hi")
    page.wait_for_selector(".msg-assistant[aria-busy=true]")
    assert page.inner_text("#announcer") == ""
    page.wait_for_selector(".msg-assistant .msg-meta")
    wait_for(page, "document.getElementById('announcer').textContent.includes('Hello there')")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_no_serious_accessibility_faults(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any, locale: str, theme: str
) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make test-setup` installs it (npm ci)")
    fake_upstream.default = Behaviour(chunks=CODE_REPLY)
    # The strict CSP refuses injected scripts: this context lets axe in.
    page = page_for(locale, bypass_csp=True, color_scheme=theme)
    open_chat(page)
    send(page, "check me")
    page.wait_for_selector(".msg-assistant .msg-meta")
    screenshot(page, f"chat-{theme}-{locale}")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        (violation["id"], [(node["target"], node["failureSummary"]) for node in violation["nodes"]][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert serious == []


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_the_meter_counts_a_reply_at_once_with_no_limit_too(
    people: People, fake_model: ChatModel, page_for: Any, locale: str
) -> None:
    """A class with no token or cost limit: the meter still counts what was used, live the
    same as after a reload."""
    quota_policy_set(classroom=people.classroom, period="week", rpm=5)
    page = page_for(locale)
    open_chat(page)
    before = page.inner_text("#quota-text")
    send(page, "q1")
    page.wait_for_selector(".msg-assistant .msg-meta")
    live = page.locator("#quota-text")
    expect(live).not_to_have_text(before)
    shown = live.inner_text()
    page.reload()
    assert page.inner_text("#quota-text") == shown


def test_every_control_in_a_message_can_be_tapped_on_a_touch_phone(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    """Copy, Edit, the versions switcher, the cost breakdown and Regenerate: 44 px or more
    on a touch screen, and still no sideways scroll."""
    fake_upstream.default = Behaviour(chunks=CODE_REPLY)
    page = page_for("zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    open_chat(page)
    send(page, "code please")
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.click("#regenerate")
    page.wait_for_selector(".msg-assistant .versions a")
    for selector in [
        ".msg-assistant button.copy",
        ".msg-user .msg-edit",
        ".msg-assistant .versions a",
        ".msg-assistant .bill summary",
        "#regenerate",
        "#send",
        "#quota-details",
    ]:
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["height"] >= 44, (selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "chat-touch-targets-phone")


def test_a_keyboard_keeps_its_place_after_stop_and_regenerate(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    """Stop hides itself and Regenerate is disabled when pressed: the focus went to the
    page's body, twenty Tabs from the box. It goes to the box."""
    fake_upstream.default = Behaviour(chunks=["word "] * 60, delay=0.05)
    page = page_for("en-US")
    open_chat(page)
    send(page, "a long answer, please")
    page.wait_for_selector("#stop:not([hidden])")
    page.focus("#stop")
    page.keyboard.press("Enter")
    page.wait_for_selector("#send:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "content"
    fake_upstream.default = Behaviour()
    page.focus("#regenerate")
    page.keyboard.press("Enter")
    page.wait_for_selector("#send:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "content"


def test_a_model_switched_off_while_the_page_is_open_leaves_the_menu(
    people: People, fake_model: ChatModel, demo_model: ChatModel, page_for: Any
) -> None:
    """The teacher switched the chosen model off mid-lesson: the refusal says so, the text
    comes back to the box, and the model leaves the menu (it stayed, refusing every send)."""
    from apps.providers.services import class_models_set

    page = page_for("en-US")
    open_chat(page)
    class_models_set(classroom=people.classroom, allowed_models=[demo_model], default_model=demo_model)
    send(page, "still there?")
    page.wait_for_selector("#chat-error:not([hidden])")
    assert "fakeai/fake-model" in page.inner_text("#chat-error")
    assert page.input_value("#content") == "still there?"
    values = page.eval_on_selector_all("#model option", "options => options.map(o => o.value)")
    assert "fakeai/fake-model" not in values and page.input_value("#model") == "demo/demo-tutor"
    answered = page.locator(".msg-assistant").count()
    page.fill("#content", "")
    send(page, "and now?")
    expect(page.locator(".msg-assistant")).to_have_count(answered + 1, timeout=20_000)
    expect(page.locator("#chat-error")).to_be_hidden()
