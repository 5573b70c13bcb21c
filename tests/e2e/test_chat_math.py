"""Math in a real browser: typeset with KaTeX while the reply streams and after a reload
(the same), found by the same rules as the server, inside the page's CSP, never wider than
a phone."""

from __future__ import annotations

from typing import Any

import pytest

from apps.conversations.rendering import _math_out
from apps.providers.models import ChatModel
from tests.conftest import People
from tests.conversations.test_math_rendering import CASES, NOT_MATH
from tests.e2e.conftest import screenshot
from tests.e2e.test_chat_page import PHONE, open_chat, send
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

MATH_REPLY = [
    "The area of a circle is $A = \\pi r^2$, and\n\n",
    "$$\n\\int_0^1 x^2\\,dx = \\frac{1}{3} + \\sum_{n=1}^{\\infty} \\frac{1}{n^2} - \\frac{\\pi^2}{6}",
    " + \\left( \\frac{a_1 + a_2 + a_3 + a_4 + a_5 + a_6 + a_7 + a_8}{b_1 b_2 b_3 b_4 b_5 b_6 b_7 b_8} \\right)\n$$\n\n",
    "Tickets cost $5 and $10. In code: `$x$`. Bad TeX: $\\frac{1}{$ and ",
    "$\\href{javascript:window.__pwned=1}{click}$.",
    *[" More."] * 6,
]


def console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_math_is_typeset_while_streaming_and_the_same_after_a_reload(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any, locale: str
) -> None:
    fake_upstream.default = Behaviour(chunks=MATH_REPLY, delay=0.25)
    page = page_for(locale, viewport=PHONE)
    errors = console_errors(page)
    open_chat(page)
    send(page, "area of a circle?")
    page.wait_for_selector(".msg-assistant.streaming .math-inline .katex")  # before chat.done
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.wait_for_selector(".msg-assistant .math-display .katex-display")
    body = page.locator(".msg-assistant .msg-body")
    assert page.locator(".msg-assistant .math-inline, .msg-assistant .math-display").count() == 4
    assert "$5 and $10" in body.inner_text()  # money stays money
    assert page.inner_text(".msg-assistant .msg-body code") == "$x$"
    assert page.locator(".msg-assistant a[href^='javascript']").count() == 0  # \href is not trusted
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".msg-assistant .math-error").count() >= 1  # \frac{1}{ stays as its source, marked
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # a wide formula scrolls in itself
    screenshot(page, f"chat-math-phone-{locale}")
    live = body.inner_html()

    page.reload()
    page.wait_for_selector(".msg-assistant .math-display .katex-display")
    page.locator(".msg-assistant .math-inline[data-tex]").nth(2).wait_for()
    assert body.inner_html() == live
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_a_page_without_math_does_not_load_katex(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(chunks=["No math here, only $5."])
    page = page_for("en-US")
    loaded: list[str] = []
    page.on("request", lambda request: loaded.append(request.url))
    open_chat(page)
    send(page, "hi")
    page.wait_for_selector(".msg-assistant .msg-meta")
    page.reload()
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert not [url for url in loaded if "katex" in url]


def test_the_browser_finds_math_exactly_as_the_server_does(
    people: People, fake_model: ChatModel, page_for: Any
) -> None:
    page = page_for("en-US")
    open_chat(page)
    texts = [text for text, _ in CASES] + NOT_MATH + ["```\nunclosed $x$", "a \\(b\\) $c$ $$d$$ \\[e\\] \\$f"]
    for text in texts:
        ours = [{"tex": tex, "display": display} for tex, display in _math_out(text)[1].values()]
        theirs = page.evaluate("text => window.webchatMath.takeOut(text).found", text)
        assert theirs == ours, text
