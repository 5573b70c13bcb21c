"""Every link the UI shows works for the person it is shown to.

The pages are crawled as a student, a teacher, an admin and someone logged out: starting
from the pages the navigation bar and the class pages give, every same-site link found is
opened with GET, exactly as written (no query string added). Each must answer 200, or
redirect to a page that does; a 500 raises here (the test client re-raises it), and a
403 or 404 for a link the page itself offered is a broken page too.
"""

from __future__ import annotations

import uuid
from collections import deque
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import classroom_settings_set, join_code_regenerate
from apps.conversations.services import turn_begin
from apps.providers.models import ChatModel
from tests.billing.conftest import settle, take
from tests.conftest import People

pytestmark = pytest.mark.django_db

# Django admin offers hundreds of sort, filter and date links; its own pages are crawled
# one step from the admin index (every changelist and add page), not further.
ADMIN_PREFIX = "/admin/"
MAX_PAGES = 300


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def same_site_links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    links = []
    for href in parser.hrefs:
        url = urldefrag(href)[0]
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("/static/"):
            continue  # another site (a provider's key page), a fragment or a static file
        links.append(url)
    return links


def page_html(response: Any) -> str:
    if response.streaming or not response["Content-Type"].startswith("text/html"):
        return ""
    return response.content.decode()


def open_link(client: Client, url: str, came_from: str) -> Any:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    hops = 0
    while response.status_code in (301, 302) and hops < 5:
        location = response["Location"]
        if "_auth_user_id" in client.session:
            assert not location.startswith(reverse("login")), (
                f"{url} (linked from {came_from}) sent this user to log in"
            )
        response = client.get(location, HTTP_ACCEPT_LANGUAGE="zh-hans")
        hops += 1
    assert response.status_code == 200, f"{url} (linked from {came_from}) answered {response.status_code}"
    return response


def crawl(client: Client, start: list[str]) -> set[str]:
    """Open `start` and every same-site link reachable from it; returns the URLs opened."""
    queue: deque[tuple[str, str]] = deque((url, "the start") for url in start)
    seen: set[str] = set(start)
    while queue:
        url, came_from = queue.popleft()
        response = open_link(client, url, came_from)
        if url.startswith(ADMIN_PREFIX) and url != ADMIN_PREFIX:
            continue
        for link in same_site_links(page_html(response)):
            if link not in seen:
                seen.add(link)
                queue.append((link, url))
        assert len(seen) < MAX_PAGES, "the crawl found more pages than expected"
    return seen


@pytest.fixture
def school(people: People, demo_model: ChatModel) -> People:
    """The people, with something on each page: a join code, a conversation, a class
    where teachers may read, a ledger row."""
    join_code_regenerate(classroom=people.classroom)
    classroom_settings_set(
        classroom=people.classroom,
        name=people.classroom.name,
        system_prompt="",
        max_reply_tokens=None,
        teacher_can_read=True,
        allow_student_keys=True,
    )
    turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="What is a token?",
        request_id=uuid.uuid4().hex,
    )
    settle(take(people.student, people.classroom, demo_model), 10, 20, model=demo_model)
    return people


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def nav_links(client: Client) -> list[str]:
    """The links in the navigation bar of the home page (the base template's <nav>)."""
    html = client.get(reverse("home") if "_auth_user_id" in client.session else reverse("login")).content.decode()
    nav = html[html.index('<nav class="topnav"') : html.index("</nav>")]
    return same_site_links(nav)


def test_every_link_a_student_sees_works(school: People) -> None:
    client = logged_in(school.student)
    links = nav_links(client)
    assert reverse("classes") not in links and ADMIN_PREFIX not in links
    opened = crawl(client, links)
    assert reverse("keys") in opened  # this class lets students bring keys: the providers page links them
    assert {reverse("api-guide"), reverse("api-keys")} <= opened
    assert reverse("my-usage") in opened  # from the quota meter on the chat page


def test_a_student_without_key_rights_is_not_shown_the_keys_page(school: People) -> None:
    client = logged_in(school.other_student)
    opened = crawl(client, nav_links(client))
    assert reverse("keys") not in opened


def test_every_link_a_teacher_sees_works(school: People) -> None:
    client = logged_in(school.teacher)
    links = nav_links(client)
    assert {reverse("classes"), reverse("keys")} <= set(links)
    opened = crawl(client, links)
    assert reverse("class-usage", args=[school.classroom.pk]) in opened


def test_every_class_page_the_class_settings_page_links_works(school: People) -> None:
    client = logged_in(school.teacher)
    settings_page = reverse("class-settings", args=[school.classroom.pk])
    links = same_site_links(open_link(client, settings_page, "the test").content.decode())
    for name in ("class-roster", "class-models", "class-api", "class-usage", "class-quota"):
        assert reverse(name, args=[school.classroom.pk]) in links
    for link in links:
        open_link(client, link, settings_page)


def test_every_link_an_admin_sees_works(school: People) -> None:
    client = logged_in(school.admin)
    links = nav_links(client)
    assert ADMIN_PREFIX in links
    opened = crawl(client, links)
    assert reverse("admin:billing_ledgerentry_changelist") in opened
    assert reverse("admin:accounts_user_changelist") in opened


def test_every_link_someone_logged_out_sees_works(school: People) -> None:
    client = Client()
    opened = crawl(client, [reverse("login")] + nav_links(client))
    assert reverse("register") in opened


def test_every_page_names_its_icon_and_favicon_ico_leads_to_it(client: Any) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
