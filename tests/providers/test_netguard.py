"""User-typed base URLs cannot reach the server's own network (SSRF), in any spelling,
after DNS, or through a redirect."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apps.conversations.models import Message
from apps.providers.models import ChatModel, Credential
from apps.providers.netguard import BlockedURL, url_check_public
from apps.providers.services import KeyMaterial, _seal_into, credential_create
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

BLOCKED = [
    "http://127.0.0.1:8000/v1",
    "http://localhost/v1",  # a name that resolves to loopback
    "http://2130706433/v1",  # decimal 127.0.0.1
    "http://0177.0.0.1/v1",  # octal
    "http://0x7f.1/v1",  # hex, short form
    "http://127.1/v1",
    "http://[::1]/v1",
    "http://[::ffff:127.0.0.1]/v1",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/v1",
    "http://[64:ff9b::a9fe:a9fe]/v1",  # NAT64 of the metadata address
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://[fd00::1]/v1",
    "http://10.0.0.5/v1",
    "http://172.16.3.4/v1",
    "http://192.168.1.10/v1",
    "http://100.64.0.1/v1",  # carrier-grade NAT
    "http://0.0.0.0/v1",
    "http://user:pw@api.openai.com/v1",  # userinfo
    "http://api.openai.com@127.0.0.1/v1",  # userinfo trick
    "http://api.openai.com\\@127.0.0.1/v1",
    "ftp://api.openai.com/v1",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "http:///v1",
]


@pytest.mark.parametrize("url", BLOCKED)
def test_private_and_tricky_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedURL):
        url_check_public(url)


@pytest.mark.parametrize("url", ["https://8.8.8.8/v1", "http://[2001:4860:4860::8888]/v1"])
def test_public_addresses_pass(url: str) -> None:
    assert url_check_public(url) == url


def test_an_admin_can_allow_a_school_network(settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/24"]
    assert url_check_public("http://10.20.0.5:8000/v1") == "http://10.20.0.5:8000/v1"
    with pytest.raises(BlockedURL):
        url_check_public("http://10.21.0.5/v1")


@pytest.mark.django_db
def test_teacher_cannot_save_a_key_for_an_internal_url(people: People, keyed_model: ChatModel) -> None:
    with pytest.raises(ValidationError) as error:
        credential_create(actor=people.teacher, provider=keyed_model.provider, scope="class",
                          classroom=people.classroom, api_key="sk-class-key-1234", base_url="http://127.0.0.1:6379")
    assert list(error.value.message_dict) == ["base_url"]
    assert Credential.objects.count() == 0


@pytest.mark.django_db
def test_admin_site_keys_may_point_at_localhost(people: People, keyed_model: ChatModel) -> None:
    credential = credential_create(actor=people.admin, provider=keyed_model.provider, scope="site",
                                   api_key="ollama", base_url="http://127.0.0.1:11434/v1")
    assert credential.base_url == "http://127.0.0.1:11434/v1"


def _typed_url_key(people: People, model: ChatModel, base_url: str) -> Credential:
    """A class key whose URL passed the entry check earlier, but whose name now resolves
    (or redirects) somewhere internal: written directly, as DNS changing under us would."""
    credential = Credential(public_id=uuid.uuid4(), provider=model.provider, scope="class", owner=people.teacher,
                            classroom=people.classroom, base_url=base_url)
    _seal_into(credential, KeyMaterial(api_key="sk-class-key-1234"))
    credential.save()
    return credential


@pytest.mark.django_db(transaction=True)
async def test_name_resolving_to_loopback_is_refused_when_connecting(people: People, keyed_model: ChatModel,
                                                                     fake_upstream: FakeUpstream) -> None:
    port = fake_upstream.base_url.rsplit(":", 1)[1].split("/")[0]
    from asgiref.sync import sync_to_async

    await sync_to_async(_typed_url_key)(people, keyed_model, f"http://localhost:{port}/v1")
    ws = await ws_connect(people.student)
    await ws.connect()

    frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_blocked"
    assert fake_upstream.chat_requests() == []
    reply = await Message.objects.aget(pk=frames[0]["message"])
    assert (reply.status, reply.error_code) == ("failed", "upstream_blocked")
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_redirect_to_an_internal_address_is_refused(people: People, keyed_model: ChatModel,
                                                          fake_upstream: FakeUpstream, settings: Any) -> None:
    # "Public" here is 127.0.0.2, which the admin allowed; the redirect goes to 127.0.0.1.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    outside = FakeUpstream(host="127.0.0.2").start()
    try:
        outside.default = Behaviour(redirect_to=f"{fake_upstream.base_url}/chat/completions")
        from asgiref.sync import sync_to_async

        await sync_to_async(_typed_url_key)(people, keyed_model, outside.base_url)
        ws = await ws_connect(people.student)
        await ws.connect()

        frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")

        assert len(outside.chat_requests()) == 1  # the allowed host was reached...
        assert fake_upstream.chat_requests() == []  # ...its redirect inward was not followed
        assert frames[-1]["code"] == "upstream_blocked"
        await ws.disconnect()
    finally:
        outside.stop()
