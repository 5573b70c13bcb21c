"""The code on a provider page: Python (openai SDK, streaming, printing usage), curl and
Node.js, against the provider itself and against this site's /v1. The lessons' shape
(openai-sdk-and-env.zh.md): the key comes from the environment, never from the code."""

from __future__ import annotations

import json
from typing import TypedDict

from django.utils.translation import gettext as _


class CodeExamples(TypedDict):
    provider_python: str
    provider_curl: str
    provider_node: str
    site_python: str
    site_curl: str
    site_node: str


def _python(*, key_var: str, base_url: str, model: str, question: str) -> str:
    # Not inside the f-string: makemessages (xgettext) finds no call there.
    key_comment = _("the key, from the environment or .env")
    usage_comment = _("the last chunk carries the token counts")
    return f"""import os
from openai import OpenAI

client = OpenAI(
    api_key=os.getenv("{key_var}"),  # {key_comment}
    base_url="{base_url}",
)

stream = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": {json.dumps(question, ensure_ascii=False)}}}],
    stream=True,
    stream_options={{"include_usage": True}},  # {usage_comment}
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print()
        print("prompt_tokens:", chunk.usage.prompt_tokens)
        print("completion_tokens:", chunk.usage.completion_tokens)
        print("total_tokens:", chunk.usage.total_tokens)
"""


def _curl(*, key_var: str, base_url: str, model: str, question: str) -> str:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": question}]}, ensure_ascii=False)
    return f"""curl {base_url}/chat/completions \\
  -H "Authorization: Bearer ${key_var}" \\
  -H "Content-Type: application/json" \\
  -d '{body}'
"""


def _node(*, key_var: str, base_url: str, model: str, question: str) -> str:
    return f"""import OpenAI from "openai";

const client = new OpenAI({{
  apiKey: process.env.{key_var},
  baseURL: "{base_url}",
}});

const stream = await client.chat.completions.create({{
  model: "{model}",
  messages: [{{ role: "user", content: {json.dumps(question, ensure_ascii=False)} }}],
  stream: true,
  stream_options: {{ include_usage: true }},
}});
for await (const chunk of stream) {{
  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");
  if (chunk.usage) console.log("\\n", chunk.usage);
}}
"""


def code_examples(
    *, provider_base_url: str, key_var: str, model: str, site_base_url: str, site_model: str
) -> CodeExamples:
    """The six examples; the site's are empty when the provider has no model to call."""
    question = _("Hello?")
    direct = {"key_var": key_var, "base_url": provider_base_url, "model": model, "question": question}
    site = {"key_var": "OPENAI_API_KEY", "base_url": site_base_url, "model": site_model, "question": question}
    return {
        "provider_python": _python(**direct),
        "provider_curl": _curl(**direct),
        "provider_node": _node(**direct),
        "site_python": _python(**site) if site_model else "",
        "site_curl": _curl(**site) if site_model else "",
        "site_node": _node(**site) if site_model else "",
    }
