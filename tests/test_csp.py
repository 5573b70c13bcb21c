"""Content-Security-Policy: every page sends a strict policy, and no page needs an exception
from it (no inline script, style or event handler). The browser's side: tests/e2e/test_csp.py."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
import time_machine
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from apps.accounts.services import classroom_settings_set
from apps.billing.services import usage_rollup
from apps.conversations.rendering import reply_html
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import People

pytestmark = pytest.mark.django_db

EXPECTED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "frame-ancestors": {"'none'"},
}


def policy(response: object) -> dict[str, set[str]]:
    header = response["Content-Security-Policy"]  # type: ignore[index]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: set(values) for name, *values in directives}


class InlineCode(HTMLParser):
    """Collects what a policy without 'unsafe-inline' blocks: inline <script> (data blocks
    such as application/json are not scripts), <style> blocks, style="" and on*="" attributes,
    javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if (
            tag == "script"
            and "src" not in names
            and names.get("type", "text/javascript") in ("text/javascript", "module", "")
        ):
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"<style> block at line {self.getpos()[0]}")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f'{name}="{value}" on <{tag}> at line {self.getpos()[0]}')
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL on <{tag}>")


def inline_code(html: str) -> list[str]:
    finder = InlineCode()
    finder.feed(html)
    return finder.found


@pytest.fixture
def spent(people: People, fake_model: ChatModel) -> None:
    """Two days of usage, rolled up, so the usage page draws its chart; teachers may read."""
    policy_set(people.classroom, student_token_limit=100_000)
    classroom_settings_set(
        classroom=people.classroom,
        name=people.classroom.name,
        system_prompt="",
        max_reply_tokens=None,
        teacher_can_read=True,
        allow_student_keys=False,
    )
    for day in (3, 4):
        with time_machine.travel(datetime(2026, 3, day, 2, 0, tzinfo=UTC), tick=False):
            settle(take(people.student, people.classroom, fake_model), 1000, 500)
    usage_rollup(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 3, 6, tzinfo=UTC))


def site_pages(people: People) -> list[tuple[str, str, dict[str, str]]]:
    """(who, url, query) for every page of the site people use outside admin."""
    classroom = people.classroom.pk
    return [
        ("nobody", reverse("login"), {}),
        ("nobody", reverse("register"), {}),
        ("student", reverse("home"), {}),
        ("student", reverse("providers"), {}),
        ("student", reverse("my-usage"), {}),
        ("student", reverse("joined"), {}),
        ("student", reverse("compare"), {}),
        ("student", reverse("api-keys"), {}),
        ("student", reverse("api-guide"), {}),
        ("teacher", reverse("my-usage"), {}),
        ("teacher", reverse("classes"), {}),
        ("teacher", reverse("class-settings", args=[classroom]), {}),
        ("teacher", reverse("class-roster", args=[classroom]), {}),
        ("teacher", reverse("class-models", args=[classroom]), {}),
        ("teacher", reverse("class-api", args=[classroom]), {}),
        ("teacher", reverse("class-quota", args=[classroom]), {}),
        ("teacher", reverse("class-usage", args=[classroom]), {"start": "2026-03-01", "end": "2026-03-05"}),
        ("teacher", reverse("keys"), {}),
        ("teacher", reverse("teacher-student-conversations", args=[classroom, people.student.pk]), {}),
    ]


def admin_pages() -> list[str]:
    """Admin's index and, for every registered model, its list and its add form."""
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    return urls


def test_every_page_sends_a_strict_policy_and_holds_no_inline_code(people: People, spent: None) -> None:
    clients = {"nobody": Client()}
    for who in ("student", "teacher"):
        clients[who] = Client()
        clients[who].force_login(getattr(people, who))
    checked = 0
    for who, url, query in site_pages(people):
        response = clients[who].get(url, query)
        assert response.status_code == 200, url
        assert EXPECTED.items() <= policy(response).items(), url
        assert inline_code(response.content.decode()) == [], url
        checked += 1
    assert checked == len(site_pages(people))


def test_the_usage_chart_and_quota_meter_are_drawn_without_inline_styles(people: People, spent: None) -> None:
    teacher, student = Client(), Client()
    teacher.force_login(people.teacher)
    student.force_login(people.student)
    usage = teacher.get(
        reverse("class-usage", args=[people.classroom.pk]), {"start": "2026-03-01", "end": "2026-03-05"}
    ).content.decode()
    assert usage.count('<rect class="uchart-bar') == 2
    chat = student.get(reverse("home")).content.decode()
    assert 'id="quota-fill" width="' in chat


def test_every_admin_page_sends_the_policy_and_holds_no_inline_code(people: People, spent: None) -> None:
    client = Client()
    client.force_login(people.admin)
    for url in admin_pages():
        response = client.get(url)
        if response.status_code == 403:  # read-only models have no add form
            continue
        assert response.status_code == 200, url
        assert EXPECTED.items() <= policy(response).items(), url
        assert inline_code(response.content.decode()) == [], url


def test_sockets_are_allowed_to_this_host_only(people: People, client: Client) -> None:
    client.force_login(people.student)
    connect_src = policy(client.get(reverse("home")))["connect-src"]
    assert connect_src == {"'self'", "ws://testserver"}
    secure = policy(client.get(reverse("home"), secure=True))["connect-src"]
    assert secure == {"'self'", "wss://testserver"}


def test_error_pages_and_json_send_the_policy_too(client: Client) -> None:
    for url in ("/no-such-page/", "/healthz"):
        assert policy(client.get(url))["frame-ancestors"] == {"'none'"}, url


def test_a_request_for_another_host_gets_no_socket_source() -> None:
    response = Client(HTTP_HOST="evil.example").get("/healthz")
    assert response.status_code == 400
    assert policy(response)["connect-src"] == {"'self'"}


@pytest.mark.parametrize(
    "markdown",
    [
        "![x](http://evil.example/x.png)",
        '<img src="https://evil.example/y.png">',
        "![x][ref]\n\n[ref]: //evil.example/z.png",
        '<picture><source srcset="http://evil.example/a.png"></picture>',
        '<div style="background: url(http://evil.example/b.png)">text</div>',
    ],
)
def test_the_reply_sanitiser_drops_images_from_other_hosts(markdown: str) -> None:
    """The first line of defence; the policy's img-src is the second."""
    html = reply_html(markdown)
    assert "evil.example" not in html
