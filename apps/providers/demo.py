"""The built-in demo model: what it says.

It has no AI behind it. Every answer restates the question and walks through how a real
LLM API would count and bill it, so a class can watch streaming and token billing work
before the school has a single provider key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
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


@dataclass
class _Budget:
    """What one schema's value may still cost: values built, and bytes copied into it (given
    consts and enum values, property names, strings made, patterns parsed)."""

    values: int = SCHEMA_VALUES_MAX
    copied: int = SCHEMA_COPIED_BYTES_MAX

    @property
    def spent(self) -> bool:
        return self.values <= 0 or self.copied <= 0


def demo_value_for(schema: object, *, root: object = None, depth: int = 0, budget: _Budget | None = None) -> Any:
    """A small value that fits a JSON schema (the demo's answer to `json_schema` output and
    its arguments to a tool), as a real model in strict mode gives one: the first enum value
    or const, each property of an object, an array's fewest items (none once nested deep, so
    a recursive schema ends), a string of its format, pattern and length ("demo" if free), a
    number within its bounds and multiple. At most SCHEMA_VALUES_MAX values, _SCHEMA_DEPTH
    deep, SCHEMA_COPIED_BYTES_MAX of given values."""
    root = schema if root is None else root
    budget = _Budget() if budget is None else budget
    if not isinstance(schema, dict) or depth > _SCHEMA_DEPTH or budget.spent:
        return None
    budget.values -= 1
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/") and isinstance(root, dict):
        target: Any = root
        for part in reference[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return demo_value_for(target, root=root, depth=depth + 1, budget=budget)
    if "const" in schema or (isinstance(schema.get("enum"), list) and schema["enum"]):
        given = schema["const"] if "const" in schema else schema["enum"][0]
        budget.copied -= len(given) if isinstance(given, str) else len(json.dumps(given))
        return given if budget.copied >= 0 else None
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
            if budget.spent:
                break
            budget.values -= 1
            budget.copied -= len(name)
            value[name] = demo_value_for(sub, root=root, depth=depth + 1, budget=budget)
        return value
    if kind == "array":
        return [
            demo_value_for(schema.get("items"), root=root, depth=depth + 1, budget=budget)
            for _ in range(_items_count(schema, depth=depth))
        ]
    if kind == "string":
        text = _demo_string(schema, budget)
        budget.copied -= len(text)  # long minLengths, many times over, count as copied bytes
        return text if budget.copied >= 0 else None
    if kind in ("integer", "number"):
        return _demo_number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    return None


# Below this depth an array with no minItems gets one item, deeper none: a recursive schema
# (a tree's children) ends in empty lists, not in nulls where values are required.
_ITEMS_DEPTH = 4
_ITEMS_MAX = 3


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _items_count(schema: dict[str, Any], *, depth: int) -> int:
    least, most = _whole(schema.get("minItems")), _whole(schema.get("maxItems"))
    count = least if least else (1 if depth < _ITEMS_DEPTH else 0)
    if schema.get("uniqueItems") is True:
        count = min(count, 1)  # the items made are all alike
    if most is not None:
        count = min(count, most)
    return min(count, _ITEMS_MAX)


# A value of each string format a library asks for (pydantic: date, date-time, uuid, email ...).
_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "demo@example.com",
    "idn-email": "demo@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_PATTERN_CHARS_MAX = 200
_PATTERN_SOURCE_MAX = 1_000
# The longest string made for a minLength (longer asks are cut here: a minLength of 10^9
# built gigabytes on the event loop).
_STRING_CHARS_MAX = 1_000


def _demo_string(schema: dict[str, Any], budget: _Budget) -> str:
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        budget.copied -= len(pattern)  # parsing a pattern costs as much as copying it
        matching = _string_matching(pattern)
        if matching is not None:
            return matching
    text = _FORMATS.get(schema.get("format"), "demo") if isinstance(schema.get("format"), str) else "demo"
    least, most = _whole(schema.get("minLength")), _whole(schema.get("maxLength"))
    if least is not None and len(text) < least:
        least = min(least, _STRING_CHARS_MAX)
        text = (text * (least // len(text) + 1))[:least]
    if most is not None and len(text) > most:
        text = text[:most]
    return text


@functools.lru_cache(maxsize=256)  # a schema may hold the same pattern many times
def _string_matching(pattern: str) -> str | None:
    """A short string the regular expression matches (as JSON Schema's pattern applies it),
    built from its parse: the first branch, each repeat's fewest, a class's first
    character. None when it cannot tell (a lookaround, a backreference, a word boundary,
    too long). The caller's pattern is parsed, never run: matching `(a?){30}a{30}` takes
    hours, on the event loop every socket shares."""
    if len(pattern) > _PATTERN_SOURCE_MAX:
        return None
    try:
        built = _built(re._parser.parse(pattern))  # type: ignore[attr-defined]
    except (re.error, RecursionError, ValueError, TypeError, KeyError, IndexError, OverflowError):
        return None
    return built if built is not None and len(built) <= _PATTERN_CHARS_MAX else None


def _built(parsed: Any) -> str | None:
    constants = re._constants  # type: ignore[attr-defined]
    out: list[str] = []
    for op, argument in parsed:
        if op is constants.LITERAL:
            if 0xD800 <= argument <= 0xDFFF:
                return None  # a lone surrogate cannot be sent as UTF-8
            out.append(chr(argument))
        elif op is constants.ANY:
            out.append("a")
        elif op is constants.IN:
            character = _class_character(argument)
            if character is None:
                return None
            out.append(character)
        elif op in (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None)):
            least, _most, item = argument
            if least > _PATTERN_CHARS_MAX:
                return None
            piece = _built(item)
            if piece is None:
                return None
            out.append(piece * least)
        elif op is constants.SUBPATTERN:
            piece = _built(argument[-1])
            if piece is None:
                return None
            out.append(piece)
        elif op is constants.BRANCH:
            piece = _built(argument[1][0])
            if piece is None:
                return None
            out.append(piece)
        elif op is constants.AT and argument in (
            constants.AT_BEGINNING,
            constants.AT_BEGINNING_STRING,
            constants.AT_END,
            constants.AT_END_STRING,
        ):
            continue  # ^ $ \A \Z: the built string starts and ends where the pattern does
        else:
            return None  # lookarounds, backreferences, conditionals
        if sum(map(len, out)) > _PATTERN_CHARS_MAX:
            return None
    return "".join(out)


def _class_character(items: Any) -> str | None:
    constants = re._constants  # type: ignore[attr-defined]
    for op, argument in items:
        if op is constants.NEGATE:
            return None
        if op is constants.LITERAL:
            return None if 0xD800 <= argument <= 0xDFFF else chr(argument)
        if op is constants.RANGE:
            return None if 0xD800 <= argument[0] <= 0xDFFF else chr(argument[0])
        if op is constants.CATEGORY:
            return {
                constants.CATEGORY_DIGIT: "0",
                constants.CATEGORY_WORD: "a",
                constants.CATEGORY_SPACE: " ",
                constants.CATEGORY_NOT_DIGIT: "a",
                constants.CATEGORY_NOT_WORD: "-",
                constants.CATEGORY_NOT_SPACE: "a",
            }.get(argument)
    return None


# Bounds past this are not honoured (10**400 is valid JSON; math on it overflows a float).
_NUMBER_MAX = 1e15


def _number_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not -_NUMBER_MAX <= value <= _NUMBER_MAX:
        return None  # NaN compares false both ways
    return value


def _demo_number(schema: dict[str, Any], *, integer: bool) -> int | float:
    """0 if it fits; else the lowest value within the bounds (inclusive and exclusive, in
    either draft's form) that is a multiple of multipleOf, else the bound itself."""
    low, high = _number_or_none(schema.get("minimum")), _number_or_none(schema.get("maximum"))
    low_open, high_open = (
        _number_or_none(schema.get("exclusiveMinimum")),
        _number_or_none(schema.get("exclusiveMaximum")),
    )
    if schema.get("exclusiveMinimum") is True and low is not None:  # draft 4: a flag on minimum
        low, low_open = None, low
    if schema.get("exclusiveMaximum") is True and high is not None:
        high, high_open = None, high
    step = _number_or_none(schema.get("multipleOf"))
    step = step if step and step >= 1e-9 else None

    def fits(value: float) -> bool:
        return (
            (low is None or value >= low)
            and (high is None or value <= high)
            and (low_open is None or value > low_open)
            and (high_open is None or value < high_open)
            and (step is None or _multiple(value, step))
        )

    lowest = max([bound for bound in (low, low_open) if bound is not None], default=None)
    highest = min([bound for bound in (high, high_open) if bound is not None], default=None)
    candidates: list[float] = [0]
    if lowest is not None:
        candidates += [lowest, math.floor(lowest) + 1, lowest + 1]
        if highest is not None:
            candidates.append((lowest + highest) / 2)
    if highest is not None:
        candidates += [highest, math.ceil(highest) - 1, highest - 1]
    if step is not None:
        start = lowest if lowest is not None else (highest if highest is not None else 0)
        first = math.ceil(start / step) * step
        candidates += [first, first + step, math.floor(start / step) * step - step]
    for value in candidates:
        if integer and value != math.floor(value):
            continue
        if fits(value):
            return int(value) if integer or value == int(value) else value
    given = lowest if lowest is not None else highest if highest is not None else 0
    return int(given) if integer else given


def _multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-9


def demo_structured_reply(
    *, response_format: object, text: str, messages: list[dict[str, Any]] | None = None
) -> str | None:
    """The reply as JSON when the caller asked for JSON: a value fitting its json_schema; for
    json_object, a value fitting a JSON schema the messages hold (instructor's and others'
    JSON modes put the schema in the prompt), else `{"reply": ...}`. None: plain text was
    asked for."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        schema = _schema_in(messages or [])
        if schema is not None:
            return json.dumps(demo_value_for(schema), ensure_ascii=False)
        return json.dumps({"reply": text}, ensure_ascii=False)
    spec = response_format.get("json_schema")
    if response_format.get("type") == "json_schema" and isinstance(spec, dict):
        return json.dumps(demo_value_for(spec.get("schema")), ensure_ascii=False)
    return None


# How much of the messages is searched for a schema, and at most how many places in it.
_SCHEMA_SEARCH_CHARS = 64 * 1024
_SCHEMA_SEARCH_STARTS = 64


def _schema_in(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema (an object with properties, or a reference into its own $defs, as
    pydantic writes a recursive model) written in the system, developer or user messages,
    latest message first. One budget of characters and starting points for the whole
    request, not per message: 38 messages each at the limits spent 3.3 s of the event loop."""
    decoder = json.JSONDecoder()
    chars_left, starts_left = _SCHEMA_SEARCH_CHARS, _SCHEMA_SEARCH_STARTS
    for message in reversed(messages):
        if message.get("role") not in ("system", "developer", "user"):
            continue
        content = message.get("content")
        parts = (
            [content]
            if isinstance(content, str)
            else [part.get("text") for part in content if isinstance(part, dict)]
            if isinstance(content, list)
            else []
        )
        for text in parts:
            if not isinstance(text, str):
                continue
            if chars_left <= 0 or starts_left <= 0:
                return None
            text = text[:chars_left]
            chars_left -= len(text)
            at = text.find("{")
            while at >= 0 and starts_left > 0:
                starts_left -= 1
                try:
                    found, end = decoder.raw_decode(text, at)
                except ValueError:
                    at = text.find("{", at + 1)
                    continue
                if isinstance(found, dict) and (
                    isinstance(found.get("properties"), dict)
                    or (isinstance(found.get("$ref"), str) and isinstance(found.get("$defs"), dict))
                ):
                    return found
                at = text.find("{", end)
    return None


def demo_tool_call(*, messages: list[dict[str, Any]], tools: object, tool_choice: object) -> dict[str, Any] | None:
    """The tool call the demo makes: when tools are offered and tool_choice allows it, it
    calls the chosen tool (or the first) with arguments made from its parameters' schema.
    With tool_choice auto, after a tool's result it answers in text instead; `required` or
    a named function is a call every time, as OpenAI's."""
    if not isinstance(tools, list) or not tools or tool_choice == "none":
        return None
    forced = tool_choice == "required" or isinstance(tool_choice, dict)
    if not messages or (messages[-1].get("role") != "user" and not forced):
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
