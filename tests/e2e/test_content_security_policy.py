"""In Chromium: the pages run under the Content-Security-Policy without a single violation,
and neither a reply's remote image nor HTML slipped into the page can reach another host."""

from __future__ import annotations

from typing import Any

import pytest

from apps.providers.models import ChatModel
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

# Recorded from the document's first moment (Playwright's init scripts are not subject to
# the page's policy).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__violations.push(e.effectiveDirective + " " + e.blockedURI));
"""


def watched(page: Any) -> dict[str, list[str]]:
    """Record the page's console errors and every request to evil.example (answered by
    nobody: aborted here, so no DNS lookup leaves the machine)."""
    seen: dict[str, list[str]] = {"errors": [], "evil_requests": []}
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))

    def refuse(route: Any) -> None:
        seen["evil_requests"].append(route.request.url)
        route.abort()

    page.route("**://evil.example/**", refuse)
    return seen


def violations(page: Any) -> list[str]:
    page.wait_for_timeout(200)  # the events are queued as tasks after the load
    return page.evaluate("window.__violations")


def test_a_reply_with_a_remote_image_never_requests_that_host(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, page_for: Any
) -> None:
    fake_upstream.default = Behaviour(
        chunks=[
            "Look: ",
            "![x](http://evil.example/x.png)",
            " and ",
            '<img src="http://evil.example/raw.png">',
            " done.",
        ]
    )
    page = page_for("en-US")
    seen = watched(page)
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#chat[data-connected=true]")
    page.select_option("#model", "fakeai/fake-model")
    page.fill("#content", "show me a picture")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg-assistant .msg-meta")
    assert page.locator(".msg-assistant .msg-body img").count() == 0  # the sanitiser dropped them
    page.reload()
    page.wait_for_selector(".msg-assistant .msg-meta")

    assert violations(page) == []
    assert [e for e in seen["errors"] if "Content Security Policy" in e] == []
    assert seen["evil_requests"] == []
    screenshot(page, "csp-remote-image-reply")


def test_html_that_slips_into_the_page_cannot_load_or_run_anything(
    people: People, demo_model: ChatModel, page_for: Any
) -> None:
    """The policy as the second line of defence: as if the sanitiser had let HTML through."""
    page = page_for("en-US")
    seen = watched(page)
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#chat[data-connected=true]")
    page.evaluate("""() => {
        const box = document.createElement("div");
        box.innerHTML = '<img src="http://evil.example/pixel.png">'
            + '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" onerror="window.__pwned = 1" onload="window.__pwned = 1">'
            + '<span style="color: red">styled</span>';
        document.querySelector("main").append(box);
    }""")
    page.wait_for_timeout(300)

    found = violations(page)
    assert any(v.startswith("img-src http://evil.example/pixel.png") for v in found), found
    assert any(v.startswith("script-src-attr") for v in found), found  # the onload/onerror handlers
    assert any(v.startswith("style-src-attr") for v in found), found
    assert page.evaluate("window.__pwned") is None
    assert seen["evil_requests"] == []


def test_site_and_admin_pages_load_without_a_single_violation(
    people: People, demo_model: ChatModel, page_for: Any
) -> None:
    pages = {
        "teacher_wang": [
            "/",
            f"/classes/{people.classroom.pk}/",
            f"/classes/{people.classroom.pk}/roster/",
            f"/classes/{people.classroom.pk}/quota/",
            f"/classes/{people.classroom.pk}/usage/?start=2026-03-01&end=2026-03-05",
            "/keys/",
        ],
        "root": [
            "/admin/",
            "/admin/billing/ledgerentry/",
            "/admin/accounts/user/",
            f"/admin/accounts/user/{people.student.pk}/change/",
            "/admin/accounts/classroom/add/",
            "/admin/billing/balancecheck/",
        ],
    }
    for username, urls in pages.items():
        page = page_for("en-US")
        seen = watched(page)
        log_in(page, username, PASSWORD)
        page.wait_for_load_state()
        for url in urls:
            response = page.goto(url)
            assert response is not None and response.status == 200, url
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], url
            assert violations(page) == [], url
        assert [e for e in seen["errors"] if "Content Security Policy" in e] == [], username
