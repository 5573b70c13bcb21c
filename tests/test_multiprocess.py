"""Two ASGI server processes share one PostgreSQL and one Redis: a student's parallel
requests spread over both cannot overspend the quota. (The Celery worker process that runs
a rollup on the same stack: tests/billing/test_rollups.py.) Runs in the production-stack
pass of `make test`, where DATABASE_URL and REDIS_URL point at real servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from websockets.sync.client import connect as ws_open

from apps.billing.models import LedgerEntry, UsageCounter
from apps.gateway.services import api_key_create
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set
from tests.billing.test_rollups import database_url_for_subprocess
from tests.conftest import People, session_cookie_for
from tests.fake_upstream import Behaviour, FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 24

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs the production stack (make test runs it with PostgreSQL and Redis)",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "LOG_FORMAT": "plain",
        "INTERNAL_BASE_URL": f"http://127.0.0.1:{port}",
        # One student's many parallel sockets here test the quota, not the socket cap
        # (which tests/conversations/test_socket_lifecycle.py covers).
        "CHAT_MAX_SOCKETS_PER_USER": str(REQUESTS),
        "DB_POOL": "True",  # as in production: psycopg's pool on PostgreSQL
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "webchat.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws",
            "websockets-sansio",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server on {port} did not start")


def test_parallel_chats_and_api_calls_over_two_server_processes_never_overspend(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Half the requests are chat turns over the websocket, half /v1 calls with the openai
    SDK, spread over both processes, all against one student's quota."""
    fake_upstream.default = Behaviour(chunks=["one ", "two ", "three"], delay=0.2, usage=(100, 100))
    # Each request holds its counted prompt + 100 reply tokens; room for 5 of them.
    policy_set(people.classroom, student_token_limit=5 * 300)
    from apps.billing.selectors import limits_forget

    limits_forget()
    cookie = session_cookie_for(people.student)
    api_key = api_key_create(user=people.student, name="race")[1]
    ports = [free_port(), free_port()]
    servers = [start_server(port) for port in ports]
    outcomes: list[str] = []
    entry_points: list[str] = []
    served_by: dict[int, int] = {}
    lock = threading.Lock()
    try:
        for port, server in zip(ports, servers, strict=True):
            wait_ready(port, server)
        barrier = threading.Barrier(REQUESTS)

        def by_api(port: int) -> str:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key, max_retries=0, timeout=60)
            barrier.wait(timeout=60)
            try:
                stream = client.chat.completions.create(
                    model="fakeai/fake-model", messages=[{"role": "user", "content": "hi"}], max_tokens=100, stream=True
                )
                for _chunk in stream:
                    pass
            except openai.RateLimitError as error:
                return str(error.code)
            return "complete"

        def one(index: int) -> None:
            port = ports[index % 2]
            if index % 4 >= 2:
                result = by_api(port)
                with lock:
                    outcomes.append(result)
                    entry_points.append("api")
                    served_by[port] = served_by.get(port, 0) + 1
                return
            with ws_open(
                f"ws://127.0.0.1:{port}/ws/chat/",
                origin=f"http://127.0.0.1:{port}",
                additional_headers={"Cookie": f"sessionid={cookie}"},
                open_timeout=30,
            ) as socket_:
                barrier.wait(timeout=60)
                socket_.send(
                    json.dumps(
                        {
                            "type": "chat.send",
                            "conversation": None,
                            "model": "fakeai/fake-model",
                            "content": "hi",
                            "params": {},
                        }
                    )
                )
                while True:
                    frame = json.loads(socket_.recv(timeout=60))
                    if frame["type"] == "chat.done":
                        result = frame["status"]
                        break
                    if frame["type"] == "chat.error":
                        result = frame["code"]
                        break
            with lock:
                outcomes.append(result)
                entry_points.append("chat")
                served_by[port] = served_by.get(port, 0) + 1

        threads = [threading.Thread(target=one, args=(i,)) for i in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()

    assert len(outcomes) == REQUESTS
    assert set(outcomes) <= {"complete", "quota_exceeded", "insufficient_quota"}, outcomes
    assert entry_points.count("api") == entry_points.count("chat") == REQUESTS // 2
    assert 1 <= outcomes.count("complete") <= 5
    assert LedgerEntry.objects.filter(user=people.student).count() == outcomes.count("complete")
    spent = LedgerEntry.objects.filter(user=people.student).aggregate(t=Sum("prompt_tokens") + Sum("completion_tokens"))
    assert spent["t"] <= 5 * 300
    counter = UsageCounter.objects.get(scope_key=f"c{people.classroom.pk}:s{people.student.pk}")
    assert counter.tokens_held == 0 and counter.tokens_used == spent["t"]
    assert served_by == {ports[0]: REQUESTS // 2, ports[1]: REQUESTS // 2}  # both processes answered
    assert len(fake_upstream.chat_requests()) == outcomes.count("complete")  # refused ones never reached it
