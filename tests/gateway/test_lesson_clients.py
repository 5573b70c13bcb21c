"""The lesson's own code, run as a student would run it on their machine: the scripts from
../shared/reference/openai-sdk-and-env.zh.md in a fresh Python process reading a .env, and
curl, against the live ASGI app (which calls the fake upstream)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import webchat.asgi  # noqa: F401  (loads the ASGI app before any test captures logs)
from apps.billing.models import LedgerEntry, Period
from apps.billing.services import quota_policy_set
from apps.gateway.services import api_key_create
from apps.providers.models import ChatModel
from tests.conftest import LiveServer, People
from tests.gateway.conftest import MODEL

pytestmark = pytest.mark.django_db(transaction=True)

# 1.5.4 "使用 .env 文件（推荐）", exactly as the lesson writes it.
LESSON_DOTENV_SCRIPT = """\
import os
from dotenv import load_dotenv
from openai import OpenAI

# 加载 .env 文件
load_dotenv()

client = OpenAI(
    api_key=os.getenv("OPENAI_API_KEY"),
    base_url=os.getenv("OPENAI_BASE_URL")
)

chat_completion = client.chat.completions.create(
    messages=[
        {
            "role": "user",
            "content": "你好？",
        }
    ],
    model=os.getenv("MODEL_NAME", "gpt-4o-mini"),  # 从环境变量读取模型名
)

print(chat_completion.choices[0].message.content)
"""

# The same, streamed, printing the usage (what the "Use the API" page adds to the lesson).
STREAM_SCRIPT = """\
import os
from dotenv import load_dotenv
from openai import OpenAI

load_dotenv()
client = OpenAI(api_key=os.getenv("OPENAI_API_KEY"), base_url=os.getenv("OPENAI_BASE_URL"))
stream = client.chat.completions.create(
    model=os.getenv("MODEL_NAME"),
    messages=[{"role": "user", "content": "你好？"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print()
        print("usage:", chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.total_tokens)
"""


def run_lesson(tmp_path: Path, script: str, env_file: str) -> subprocess.CompletedProcess[str]:
    """Run `script` as a student would: its own process, its own folder with a .env, and
    none of this test run's environment variables that the lesson reads."""
    (tmp_path / "lesson.py").write_text(script, encoding="utf-8")
    (tmp_path / ".env").write_text(env_file, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MODEL_NAME", "DJANGO_"))}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "lesson.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def dotenv_for(live_asgi: LiveServer, key: str) -> str:
    return f"OPENAI_API_KEY={key}\nOPENAI_BASE_URL={live_asgi.url}/v1\nMODEL_NAME={MODEL}\n"


def test_the_lessons_dotenv_script_runs_against_webchat(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People, tmp_path: Path
) -> None:
    result = run_lesson(tmp_path, LESSON_DOTENV_SCRIPT, dotenv_for(live_asgi, key))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello, class!"
    entry = LedgerEntry.objects.get()
    assert entry.user_id == people.student.pk and entry.entry_point == "api" and entry.status == "complete"


def test_the_streamed_script_prints_the_reply_and_its_usage(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, tmp_path: Path
) -> None:
    result = run_lesson(tmp_path, STREAM_SCRIPT, dotenv_for(live_asgi, key))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "Hello, class!"
    entry = LedgerEntry.objects.get()
    assert lines[1] == f"usage: {entry.prompt_tokens} {entry.completion_tokens} {entry.total_tokens}"


def test_a_used_up_quota_stops_the_script_with_rate_limit_error_saying_when_it_resets(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People, tmp_path: Path
) -> None:
    quota_policy_set(classroom=people.classroom, period=Period.MONTH, student_token_limit=10)
    result = run_lesson(tmp_path, LESSON_DOTENV_SCRIPT, dotenv_for(live_asgi, key))
    assert result.returncode != 0
    assert "openai.RateLimitError" in result.stderr
    assert "重置" in result.stderr  # the message says when the quota resets, in the default language
    assert not LedgerEntry.objects.exists()


def test_a_revoked_key_stops_the_script_with_authentication_error(
    live_asgi: LiveServer, fake_model: ChatModel, people: People, tmp_path: Path
) -> None:
    from apps.gateway.services import api_key_revoke

    row, key = api_key_create(user=people.student, name="old")
    api_key_revoke(key=row)
    result = run_lesson(tmp_path, LESSON_DOTENV_SCRIPT, dotenv_for(live_asgi, key))
    assert result.returncode != 0 and "openai.AuthenticationError" in result.stderr
    assert key not in result.stderr  # the error never echoes the key


def curl(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", *arguments], capture_output=True, text=True, timeout=60, check=False)


def test_curl_non_streamed_and_streamed(live_asgi: LiveServer, fake_model: ChatModel, key: str) -> None:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "你好？"}]})
    url = f"{live_asgi.url}/v1/chat/completions"
    headers = ["-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json"]
    plain = curl(url, *headers, "-d", body)
    assert plain.returncode == 0, plain.stderr
    reply = json.loads(plain.stdout)
    assert reply["choices"][0]["message"]["content"] == "Hello, class!" and reply["usage"]["total_tokens"] > 0

    streamed = curl("-N", url, *headers, "-d", json.dumps({**json.loads(body), "stream": True}))
    assert streamed.returncode == 0, streamed.stderr
    events = [line[6:] for line in streamed.stdout.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hello, class!"
    assert chunks[-1]["usage"]["total_tokens"] > 0

    models = curl(f"{live_asgi.url}/v1/models", "-H", f"Authorization: Bearer {key}")
    assert MODEL in {m["id"] for m in json.loads(models.stdout)["data"]}

    no_key = curl("-w", "%{http_code}", "-o", "/dev/null", url, "-H", "Content-Type: application/json", "-d", body)
    assert no_key.stdout == "401"
    assert LedgerEntry.objects.count() == 2
