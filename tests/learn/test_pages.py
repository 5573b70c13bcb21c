"""The teaching pages: every catalog provider's page in both languages with its sections in
the lessons' order, admins' Markdown shown sanitized, the school-key line, the index, the
tokenizer page, and the presentation view without personal data."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.gateway.services import api_key_create
from apps.learn.models import GuideSection, ProviderGuide
from apps.providers.catalog import CATALOG
from apps.providers.models import ChatModel, Provider
from tests.conftest import People

pytestmark = pytest.mark.django_db

ORDER = [
    "overview",
    "features",
    "models",
    "limits",
    "pricing",
    "key",
    "code",
    "comparison",
    "best_practice",
    "faq",
    "links",
    "changelog",
]


@pytest.fixture
def student(people: People, catalog: None) -> Client:
    client = Client()
    client.force_login(people.student)
    return client


def test_the_sections_follow_the_lessons_template() -> None:
    assert [section.value for section in GuideSection] == ORDER


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("slug", [entry["slug"] for entry in CATALOG])
def test_every_catalog_provider_page_renders_its_sections_in_order(student: Client, slug: str, language: str) -> None:
    response = student.get(reverse("learn-provider", args=[slug]), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'data-section="([a-z_]+)"', html) == ORDER
    for section in re.findall(r"<section .*?</section>", html, flags=re.S):  # none is a bare heading
        assert re.sub(r"<h2>.*?</h2>|<[^>]+>|\s", "", section, flags=re.S), section[:120]
    assert f'<html lang="{language}"' in html
    provider = Provider.objects.get(slug=slug)
    for model in ChatModel.objects.filter(provider=provider, enabled=True):
        assert f'data-model="{model.name}"' in html  # in the models and pricing tables
    assert html.count('data-provider="') >= len(CATALOG)  # the comparison table


def test_the_chinese_page_has_the_lessons_chinese_text(student: Client) -> None:
    html = student.get(reverse("learn-provider", args=["deepseek"]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "500 万 tokens" in html and "指数退避" in html
    html = student.get(reverse("learn-provider", args=["deepseek"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "5 million tokens" in html and "exponential backoff" in html


def test_prices_come_from_the_catalog_with_their_date(student: Client) -> None:
    html = student.get(reverse("learn-provider", args=["openai"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    pricing = html[html.index('data-section="pricing"') : html.index('data-section="key"')]
    assert "0.15 USD" in pricing and "0.6 USD" in pricing and "2025-04-14" in pricing


def test_an_admins_markdown_replaces_the_shipped_text_sanitized(student: Client) -> None:
    provider = Provider.objects.get(slug="glm")
    ProviderGuide.objects.create(
        provider=provider,
        language="en",
        section="limits",
        markdown='**50 requests a minute**, reset at midnight.\n\n<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n[x](javascript:alert(3))',
    )
    en = student.get(reverse("learn-provider", args=["glm"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    limits = en[en.index('data-section="limits"') : en.index('data-section="pricing"')]
    assert "<strong>50 requests a minute</strong>" in limits
    assert "<script>alert" not in en and "onerror" not in en and "javascript:" not in en
    zh = student.get(reverse("learn-provider", args=["glm"]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "50 requests a minute" not in zh  # the Chinese page keeps its own text


def test_the_page_says_whether_the_school_has_a_key(student: Client) -> None:
    html = student.get(reverse("learn-provider", args=["deepseek"])).content.decode()
    assert 'data-usable="no"' in html
    html = student.get(reverse("learn-provider", args=["demo"])).content.decode()
    assert 'data-usable="yes" data-source="none-needed"' in html


def test_an_unknown_or_disabled_provider_is_404(student: Client) -> None:
    assert student.get(reverse("learn-provider", args=["nope"])).status_code == 404
    Provider.objects.filter(slug="qwen").update(enabled=False)
    assert student.get(reverse("learn-provider", args=["qwen"])).status_code == 404


def test_pages_need_a_login(people: People, catalog: None) -> None:
    for url in (reverse("learn"), reverse("learn-tokenizer"), reverse("learn-provider", args=["openai"])):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_pages_refuse_post(student: Client) -> None:
    for url in (reverse("learn"), reverse("learn-tokenizer"), reverse("learn-provider", args=["openai"])):
        assert student.post(url).status_code == 405


def test_the_index_links_the_lessons(student: Client) -> None:
    html = student.get(reverse("learn")).content.decode()
    for url in (reverse("learn-tokenizer"), reverse("api-keys"), reverse("api-guide")):
        assert f'href="{url}"' in html
    for entry in CATALOG:
        assert f'href="{reverse("learn-provider", args=[entry["slug"]])}"' in html


def test_the_providers_list_links_each_providers_page(student: Client) -> None:
    html = student.get(reverse("providers")).content.decode()
    for entry in CATALOG:
        assert f'href="{reverse("learn-provider", args=[entry["slug"]])}"' in html


def test_the_tokenizer_preselects_the_model_asked_for(student: Client) -> None:
    html = student.get(reverse("learn-tokenizer") + "?model=qwen/qwen-plus").content.decode()
    assert '<option value="qwen/qwen-plus" selected>' in html


def test_the_presentation_view_shows_nothing_personal(people: People, student: Client) -> None:
    key, _full = api_key_create(user=people.student, name="laptop")
    normal = student.get(reverse("learn-provider", args=["openai"])).content.decode()
    assert key.prefix in normal and str(people.student) in normal
    for url in (reverse("learn-provider", args=["openai"]), reverse("learn-tokenizer")):
        html = student.get(url + "?present=1").content.decode()
        assert 'class="presenting"' in html
        assert key.prefix not in html and str(people.student) not in html
        assert 'id="present-leave"' in html


def test_teachers_get_the_presentation_toggle_and_students_do_not(people: People, student: Client) -> None:
    teacher = Client()
    teacher.force_login(people.teacher)
    for url in (reverse("learn-provider", args=["openai"]), reverse("learn-tokenizer")):
        assert f'href="{url}?present=1"' in teacher.get(url).content.decode()
        assert "?present=1" not in student.get(url).content.decode()


def test_the_learn_pages_hold_no_inline_code(people: People, student: Client) -> None:
    from tests.test_csp import inline_code, policy

    teacher = Client()
    teacher.force_login(people.teacher)
    for client in (student, teacher):
        for url in (
            reverse("learn"),
            reverse("learn-tokenizer"),
            reverse("learn-tokenizer") + "?present=1",
            reverse("learn-provider", args=["ernie"]),
            reverse("learn-provider", args=["openai"]) + "?present=1",
            reverse("api-keys"),
        ):
            response = client.get(url)
            assert policy(response)["script-src"] == {"'self'"}
            assert inline_code(response.content.decode()) == [], url


def test_a_provider_page_runs_a_fixed_number_of_queries(
    people: People, student: Client, django_assert_max_num_queries: Any
) -> None:
    student.get(reverse("learn-provider", args=["openai"]))  # the session and caches warm
    with django_assert_max_num_queries(14):
        assert student.get(reverse("learn-provider", args=["openai"])).status_code == 200


def test_an_admin_edits_a_section_in_admin_and_the_page_shows_it(people: People, student: Client) -> None:
    admin = Client()
    admin.force_login(people.admin)
    provider = Provider.objects.get(slug="moonshot")
    response = admin.post(
        reverse("admin:learn_providerguide_add"),
        {"provider": provider.pk, "language": "zh-hans", "section": "limits", "markdown": "每分钟 **3** 次请求。"},
    )
    assert response.status_code == 302
    guide = ProviderGuide.objects.get(provider=provider, section="limits")
    page = admin.get(reverse("admin:learn_providerguide_change", args=[guide.pk])).content.decode()
    assert "随累计充值金额提高" in page  # the shipped text, to start from
    html = student.get(reverse("learn-provider", args=["moonshot"]), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "每分钟 <strong>3</strong> 次请求。" in html and "data-edited" in html


def test_the_demo_models_count_is_exact_another_vendors_an_estimate() -> None:
    """The demo reports usage counted with o200k_base: for it the tokenizer page's count is
    the provider's own. (It said "estimate".)"""
    from apps.providers.tokens import encoding_for_model

    assert encoding_for_model("demo/demo-tutor") == ("o200k_base", False)
    assert encoding_for_model("deepseek/deepseek-chat") == ("o200k_base", True)
