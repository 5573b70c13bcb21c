"""The built-in demo model: what it says.

It has no AI behind it. Every answer restates the question and walks through how a real
LLM API would count and bill it, so a class can watch streaming and token billing work
before the school has a single provider key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from webchat.throttle import minute_call_take

from .tokens import TokenCount

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Stream pieces the way a tokenizer would feel: one CJK character at a time, Latin text a
# word (with its trailing space) at a time.
_PIECES = re.compile(
    r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]+\s*|\s+"
)
QUESTION_PREVIEW_CHARS = 200


@dataclass(frozen=True)
class DemoPrice:
    input_per_million: Decimal
    output_per_million: Decimal
    currency: str


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.000001')).normalize():f}"


def demo_reply_compose(
    *, messages: list[dict[str, str]], model_name: str, price: DemoPrice | None, prompt: TokenCount
) -> str:
    """The reply to `messages`, whose prompt counts `prompt` tokens."""
    question = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    question = str(question).strip()
    if len(question) > QUESTION_PREVIEW_CHARS:
        question = question[:QUESTION_PREVIEW_CHARS] + "…"
    count = prompt
    earlier = max(len(messages) - 1, 0)
    if price is None:
        price = DemoPrice(Decimal("1"), Decimal("2"), "CNY")
    cost = Decimal(count.tokens) * price.input_per_million / Decimal(1_000_000)
    figures = {
        "q": question,
        "n": count.tokens,
        "k": earlier,
        "enc": count.encoding,
        "pin": _money(price.input_per_million),
        "pout": _money(price.output_per_million),
        "cur": price.currency,
        "cost": _money(cost),
    }
    if _CJK.search(question):
        return (
            "这是演示模型：它背后没有真正的 AI，所以每个问题都用同一种方式回答——"
            "演示一次真实的大模型 API 调用是怎样计费的。\n\n"
            "你的问题是：“{q}”\n\n"
            "**输入。** 这次的提示词共 {n} 个 token：你的问题，加上本对话之前的 {k} 条消息"
            "（以及每条消息的格式开销），用 tiktoken 的 `{enc}` 编码计数。真实的模型每一轮都要"
            "把它们重新读一遍，所以对话越长，每次提问越贵。\n\n"
            "**输出。** 这段回复本身就是输出 token，回复结束后它的准确数量会显示在下方。\n\n"
            "**费用。** 按每百万输入 token {pin} {cur} 计算，输入费用是 "
            "{n} × {pin} ÷ 1,000,000 = {cost} {cur}；输出按每百万 token {pout} {cur} 同样计算。"
            "总 token 数 = 输入 + 输出。"
        ).format(**figures)
    return (
        "This is the demo model: there is no AI behind it, so it answers every question the "
        "same way, by showing how a real LLM API would bill it.\n\n"
        "You asked: \u201c{q}\u201d\n\n"
        "**Input.** Your prompt was {n} tokens: your question plus the {k} earlier messages of "
        "this conversation (and each message's framing), counted with tiktoken's `{enc}` "
        "encoding. A real model reads them all again on every turn, which is why long "
        "conversations cost more per question.\n\n"
        "**Output.** This reply is made of output tokens; their exact count appears under it "
        "when it finishes.\n\n"
        "**Cost.** At {pin} {cur} per million input tokens, the input costs "
        "{n} × {pin} ÷ 1,000,000 = {cost} {cur}. Output is billed the same way at {pout} {cur} "
        "per million. Total tokens = input + output."
    ).format(**figures)


def demo_reply_pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


# --- structured output and tool calls, so the lessons on them work offline ---------------------

_SCHEMA_DEPTH = 12
# Values built for one schema at most, and the bytes of the consts and enum values copied
# into them: each $ref is expanded where it is used, so a couple of kilobytes of nested
# definitions would otherwise make billions of values (on the event loop every socket of the
# process shares). Past either, what is left is null.
SCHEMA_VALUES_MAX = 2_000
SCHEMA_COPIED_BYTES_MAX = 64 * 1024


def demo_value_for(schema: object, *, root: object = None, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A small value that fits a JSON schema (the demo's answer to `json_schema` output and
    its arguments to a tool): the first enum value or const, each property of an object, one
    item of an array, "demo" for a string, the minimum (or 0) for a number. At most
    SCHEMA_VALUES_MAX values, _SCHEMA_DEPTH deep, SCHEMA_COPIED_BYTES_MAX of given values."""
    root = schema if root is None else root
    budget = [SCHEMA_VALUES_MAX, SCHEMA_COPIED_BYTES_MAX] if budget is None else budget
    if not isinstance(schema, dict) or depth > _SCHEMA_DEPTH or budget[0] <= 0 or budget[1] <= 0:
        return None
    budget[0] -= 1
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/") and isinstance(root, dict):
        target: Any = root
        for part in reference[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return demo_value_for(target, root=root, depth=depth + 1, budget=budget)
    if "const" in schema or (isinstance(schema.get("enum"), list) and schema["enum"]):
        given = schema["const"] if "const" in schema else schema["enum"][0]
        budget[1] -= len(given) if isinstance(given, str) else len(json.dumps(given))
        return given if budget[1] >= 0 else None
    for combined in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combined)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")] or options
            return demo_value_for(usable[0], root=root, depth=depth + 1, budget=budget)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        value: dict[str, Any] = {}
        for name, sub in properties.items():
            # Each property is a value of its own, and its name is copied: a wide object at
            # the depth limit (its properties all null) counts as wide as it is.
            if budget[0] <= 0 or budget[1] <= 0:
                break
            budget[0] -= 1
            budget[1] -= len(name)
            value[name] = demo_value_for(sub, root=root, depth=depth + 1, budget=budget)
        return value
    if kind == "array":
        count = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        return [
            demo_value_for(schema.get("items"), root=root, depth=depth + 1, budget=budget)
            for _ in range(min(max(count, 1), 3))
        ]
    if kind == "string":
        return "demo"
    if kind in ("integer", "number"):
        minimum = schema.get("minimum")
        return minimum if isinstance(minimum, int | float) and not isinstance(minimum, bool) else 0
    if kind == "boolean":
        return False
    return None


def demo_structured_reply(*, response_format: object, text: str) -> str | None:
    """The reply as JSON when the caller asked for JSON: a value fitting its json_schema, or
    `{"reply": ...}` for json_object. None: plain text was asked for."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return json.dumps({"reply": text}, ensure_ascii=False)
    spec = response_format.get("json_schema")
    if response_format.get("type") == "json_schema" and isinstance(spec, dict):
        return json.dumps(demo_value_for(spec.get("schema")), ensure_ascii=False)
    return None


def demo_tool_call(*, messages: list[dict[str, Any]], tools: object, tool_choice: object) -> dict[str, Any] | None:
    """The tool call the demo makes: when tools are offered, the last message is the user's
    and tool_choice allows it, it calls the chosen tool (or the first) with arguments made
    from its parameters' schema. After a tool's result it answers in text instead."""
    if not isinstance(tools, list) or not tools or tool_choice == "none":
        return None
    if not messages or messages[-1].get("role") != "user":
        return None
    functions = [t.get("function") for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    chosen = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    wanted = chosen.get("name") if isinstance(chosen, dict) else None
    function = next((f for f in functions if f.get("name") == wanted), None) or (functions[0] if functions else None)
    if function is None or not isinstance(function.get("name"), str):
        return None
    arguments = demo_value_for(function.get("parameters") or {"type": "object", "properties": {}})
    return {
        "id": "call_demo_" + hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16],
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


# --- who may call /demo/v1, and how often --------------------------------------------------------
#
# /demo/v1 is a public OpenAI-compatible endpoint with no account behind it: students may
# point the lesson's code at it before they have a key. It costs nothing, but it is limited
# per address (DEMO_PUBLIC_RPM a minute). webchat's own calls to it (the demo model in the
# chat and on /v1, which are metered like any model) carry a key derived from SECRET_KEY
# and are not limited here.


def demo_internal_key() -> str:
    """The bearer webchat's own routes to the demo send (never shown: it is a route's key)."""
    return hmac.new(settings.SECRET_KEY.encode(), b"webchat demo provider: internal caller", hashlib.sha256).hexdigest()


def demo_caller_is_internal(*, bearer: str) -> bool:
    return bool(bearer) and hmac.compare_digest(bearer.encode(), demo_internal_key().encode())


def demo_public_call_allowed(*, address: str, now: float | None = None) -> int | None:
    """Count a public call from `address` in the current minute. None: allowed; else the
    seconds until the next minute, when it may call again (webchat/throttle.py)."""
    return minute_call_take(scope="demo-public-rpm", caller=address, limit=settings.DEMO_PUBLIC_RPM, now=now)
