"""What a caller may ask of a chat turn, and within which bounds (README, "Websocket protocol").

The one place a chat request's input is checked, whatever the entry point: ChatRequest
(pipeline.py) runs these checks when it is built, so a request that could not be served is
refused with RequestRefused(bad_request) before anything is written or anyone is called. The
chat socket builds a ChatRequest from a frame; the OpenAI-compatible API will build one from
a request body.

Bounds are the OpenAI API's documented ones. A value outside them would only come back as
an upstream 400 after a hold was taken and a failed reply saved; a NaN or an infinity
cannot even be sent as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from webchat.errors import ErrorCode, RequestRefused

# Characters no stored or sent text may hold: a lone UTF-16 surrogate (a JSON "\ud800"
# escape) cannot be encoded as UTF-8 for the database, the provider or the socket, and
# PostgreSQL refuses NUL in text.
_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")
UNSENDABLE_TEXT = _("The request holds characters that cannot be sent (a NUL or an unpaired surrogate).")

MAX_NESTING = 32  # JSON levels, in a frame and in a response_format schema
MAX_ID = 2**63 - 1  # a database bigint
MAX_MODEL_CHARS = 200
MAX_TOKENS_CEILING = 1_000_000  # beyond any model's output; replies are cut at the model's and the class's limit
STOP_MAX_SEQUENCES = 4
STOP_MAX_CHARS = 100
SCHEMA_MAX_CHARS = 16_000
SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fullmatch: a trailing newline is no name
RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")
MAX_MESSAGES = 2048
MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_TOOLS = 128
TOOLS_MAX_CHARS = 64_000
TOOL_NAME = SCHEMA_NAME  # OpenAI's rule for function names: letters, digits, _ and -, at most 64
# OpenAI's rule for a message's `name` (a speaker: "张三", "Dr.Smith", an agent's name in a
# multi-agent framework): no whitespace and none of < | \ / >. Bounded here.
MESSAGE_NAME = re.compile(r"[^\s<|\\/>]{1,256}")
MAX_TOOL_CALL_ID = 200
LOGIT_BIAS_MAX = 300
# Parameters only the OpenAI-compatible API takes: the chat page has no way to run a tool.
API_ONLY_PARAMS = ("tools", "tool_choice", "parallel_tool_calls")


def _number_between(low: float, high: float) -> Callable[[str, object], float | int]:
    def clean(name: str, value: object) -> float | int:
        # NaN and the infinities fail the range test too; an int may be too large for a float.
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value))
            or not low <= value <= high
        ):
            raise RequestRefused(
                ErrorCode.BAD_REQUEST,
                _("'%(name)s' must be a number from %(low)s to %(high)s.") % {"name": name, "low": low, "high": high},
                param=name,
            )
        return value

    return clean


def _seed(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value <= MAX_ID:
        raise RequestRefused(
            ErrorCode.BAD_REQUEST, _("'seed' must be a whole number from -2^63 to 2^63-1."), param=name
        )
    return value


def _stop(name: str, value: object) -> str | list[str]:
    given = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    sequences = [s for s in given if isinstance(s, str) and 1 <= len(s) <= STOP_MAX_CHARS and text_is_sendable(s)]
    if not 1 <= len(given) <= STOP_MAX_SEQUENCES or len(sequences) != len(given):
        raise RequestRefused(
            ErrorCode.BAD_REQUEST,
            _("'stop' must be a string or a list of at most %(n)d strings, each of 1 to %(chars)d characters.")
            % {"n": STOP_MAX_SEQUENCES, "chars": STOP_MAX_CHARS},
            param=name,
        )
    return sequences[0] if isinstance(value, str) else sequences


def _response_format(name: str, value: object) -> dict[str, Any]:
    refused = RequestRefused(
        ErrorCode.BAD_REQUEST,
        _(
            "'response_format' must have the type text, json_object or json_schema; a json_schema needs a name "
            "(letters, digits, _ and -) and a schema object of at most %(chars)d characters."
        )
        % {"chars": SCHEMA_MAX_CHARS},
        param=name,
    )
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMAT_TYPES:
        raise refused
    if value["type"] != "json_schema":
        if set(value) != {"type"}:
            raise refused
        return {"type": value["type"]}
    spec = value.get("json_schema")
    if set(value) != {"type", "json_schema"} or not isinstance(spec, dict):
        raise refused
    spec = _given(spec)
    if (
        not set(spec) <= {"name", "schema", "strict", "description"}
        or not isinstance(spec.get("name"), str)
        or not SCHEMA_NAME.fullmatch(spec["name"])
        or not isinstance(spec.get("schema"), dict)
        or not isinstance(spec.get("strict", False), bool)
        or not isinstance(spec.get("description", ""), str)
    ):
        raise refused
    json_value_check(value, param=name)
    if len(json.dumps(spec["schema"], ensure_ascii=False)) > SCHEMA_MAX_CHARS:
        raise refused
    return {"type": "json_schema", "json_schema": dict(spec)}


def _tools_refused(name: str) -> RequestRefused:
    return RequestRefused(
        ErrorCode.BAD_REQUEST,
        _(
            "'tools' must be a list of 1 to %(n)d function tools, each with a name (letters, digits, _ and -) "
            "and optional description, parameters (an object) and strict (true or false)."
        )
        % {"n": MAX_TOOLS},
        param=name,
    )


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """An object's fields without those set to null: null means "not given" in OpenAI's API,
    nested as at the top."""
    return {key: value for key, value in fields.items() if value is not None}


def _tools(name: str, value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TOOLS:
        raise _tools_refused(name)
    cleaned = []
    for tool in value:
        function = tool.get("function") if isinstance(tool, dict) else None
        function = _given(function) if isinstance(function, dict) else function
        if (
            not isinstance(tool, dict)
            or set(tool) != {"type", "function"}
            or tool["type"] != "function"
            or not isinstance(function, dict)
            or not set(function) <= {"name", "description", "parameters", "strict"}
            or not isinstance(function.get("name"), str)
            or not TOOL_NAME.fullmatch(function["name"])
            or not isinstance(function.get("description", ""), str)
            or not isinstance(function.get("parameters", {}), dict)
            or not isinstance(function.get("strict", False), bool)
        ):
            raise _tools_refused(name)
        cleaned.append({"type": "function", "function": dict(function)})
    json_value_check(cleaned, param=name)
    if len(json.dumps(cleaned, ensure_ascii=False)) > TOOLS_MAX_CHARS:
        raise _tools_refused(name)
    return cleaned


def _tool_choice(name: str, value: object) -> str | dict[str, Any]:
    if value in ("none", "auto", "required"):
        return value  # type: ignore[return-value]
    function = value.get("function") if isinstance(value, dict) else None
    if (
        isinstance(value, dict)
        and set(value) == {"type", "function"}
        and value["type"] == "function"
        and isinstance(function, dict)
        and set(function) == {"name"}
        and isinstance(function["name"], str)
        and TOOL_NAME.fullmatch(function["name"])
    ):
        return {"type": "function", "function": {"name": function["name"]}}
    raise RequestRefused(
        ErrorCode.BAD_REQUEST,
        _('\'tool_choice\' must be none, auto, required or {"type": "function", "function": {"name": ...}}.'),
        param=name,
    )


def _logit_bias(name: str, value: object) -> dict[str, int | float]:
    """Token ids (as strings, as JSON keys are) to a bias from -100 to 100, as OpenAI takes it."""
    if (
        isinstance(value, dict)
        and len(value) <= LOGIT_BIAS_MAX
        and all(isinstance(token, str) and token.isascii() and token.isdigit() and len(token) <= 10 for token in value)
        and all(
            not isinstance(bias, bool) and isinstance(bias, (int, float)) and -100 <= bias <= 100
            for bias in value.values()
        )
    ):
        return dict(value)
    raise RequestRefused(
        ErrorCode.BAD_REQUEST,
        _("'logit_bias' must map at most %(n)d token ids to a bias from -100 to 100.") % {"n": LOGIT_BIAS_MAX},
        param=name,
    )


def _boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("'%(name)s' must be true or false.") % {"name": name}, param=name)
    return value


# Parameters a caller may pass through to the provider (the lessons' sampling knobs and
# JSON-schema structured output), each with its check. Anything else is refused, not
# silently dropped.
PASSTHROUGH_PARAMS: dict[str, Callable[[str, object], Any]] = {
    "temperature": _number_between(0, 2),
    "top_p": _number_between(0, 1),
    "presence_penalty": _number_between(-2, 2),
    "frequency_penalty": _number_between(-2, 2),
    "seed": _seed,
    "stop": _stop,
    "response_format": _response_format,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _boolean,
    "logit_bias": _logit_bias,
}
# What asks for nothing, as libraries send it by default: the same as not given. An empty
# tool list is no tools (OpenAI takes it so; LangChain's agents send it), and then a choice
# among none of them that forces no call; an empty bias.
_NOTHING_ASKED: dict[str, tuple[object, ...]] = {"tools": ([],), "logit_bias": ({},)}
_WITH_NO_TOOLS: dict[str, tuple[object, ...]] = {"tool_choice": ("none", "auto"), "parallel_tool_calls": (True, False)}


def params_clean(*, params: object, tools_allowed: bool = False) -> dict[str, Any]:
    """The passthrough parameters, checked: a fresh dict of the known names with values
    within bounds. A null value means "the default", as in OpenAI's API: it is left out
    (whatever the name; nested in response_format and tools too).
    Raises RequestRefused(bad_request) naming the first bad one."""
    if not isinstance(params, dict):
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("'params' must be an object."), param="params")
    cleaned: dict[str, Any] = {}
    no_tools = params.get("tools") == []
    for name, value in params.items():
        check = PASSTHROUGH_PARAMS.get(name)
        if value is None:
            continue  # any parameter's null: not given
        if _asks_nothing(name, value) or (no_tools and _asks_nothing(name, value, _WITH_NO_TOOLS)):
            continue
        if check is None or (name in API_ONLY_PARAMS and not tools_allowed):
            shown = name[:40] if text_is_sendable(name) else "?"
            raise RequestRefused(
                ErrorCode.BAD_REQUEST, _("Unsupported parameter: %(name)s.") % {"name": shown}, param=shown
            )
        cleaned[name] = check(name, value)
    for name in ("tool_choice", "parallel_tool_calls"):
        if name in cleaned and "tools" not in cleaned:
            # As OpenAI answers it: a provider would refuse it, and its 400 reaches the
            # caller only as an upstream fault naming no parameter.
            raise RequestRefused(
                ErrorCode.BAD_REQUEST,
                _("'%(name)s' is only allowed when 'tools' are specified.") % {"name": name},
                param=name,
            )
    return cleaned


def _asks_nothing(name: str, value: object, table: dict[str, tuple[object, ...]] = _NOTHING_ASKED) -> bool:
    # `in` compares with ==, and True == 1: the type must match too.
    return any(type(value) is type(nothing) and value == nothing for nothing in table.get(name, ()))


def max_tokens_clean(*, value: object, param: str = "max_tokens") -> int | None:
    """None (the class's or site's default), or a whole number from 1 up. Larger values
    than the model or the class allow are cut to their limit when the turn is prepared.
    `param`: the field the caller sent it in (the API also takes max_completion_tokens)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS_CEILING:
        raise RequestRefused(
            ErrorCode.BAD_REQUEST,
            _("'%(param)s' must be a whole number from 1 to %(n)d.") % {"param": param, "n": MAX_TOKENS_CEILING},
            param=param,
        )
    return value


def conversation_id_clean(*, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("'conversation' must be an id or null."), param="conversation")
    return value


def message_id_clean(*, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("'message' must be a message's id."), param="message")
    return value


def model_clean(*, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_MODEL_CHARS or not text_is_sendable(value):
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("'model' is required, as provider/model."), param="model")
    return value


def content_clean(*, value: object) -> str:
    if not isinstance(value, str):
        raise RequestRefused(ErrorCode.BAD_REQUEST, _("'content' is required."), param="content")
    if not text_is_sendable(value):
        raise RequestRefused(ErrorCode.BAD_REQUEST, UNSENDABLE_TEXT, param="content")
    return value


def _messages_refused(index: int | None, message: Any) -> RequestRefused:
    where = "messages" if index is None else f"messages[{index}]"
    return RequestRefused(ErrorCode.BAD_REQUEST, message, param=where)


def _message_text(content: object, index: int) -> str:
    """A message's content as text: a string, or a list of text parts (joined: every
    provider takes a string, not all take parts). Images and audio are refused."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _messages_refused(index, _("Only text content is supported (parts of type text)."))
            texts.append(part["text"])
        return "".join(texts)
    raise _messages_refused(index, _("A message's content must be text."))


def _tool_calls_clean(value: object, index: int) -> list[dict[str, Any]]:
    refused = _messages_refused(
        index, _("'tool_calls' must be a list of function calls, each with an id, a name and arguments (a string).")
    )
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TOOLS:
        raise refused
    calls = []
    for call in value:
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or call.get("type", "function") != "function"
            or not isinstance(call.get("id"), str)
            or not 1 <= len(call["id"]) <= MAX_TOOL_CALL_ID
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not TOOL_NAME.fullmatch(function["name"])
            or not isinstance(function.get("arguments"), str)
        ):
            raise refused
        calls.append(
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": function["arguments"]},
            }
        )
    return calls


def messages_clean(*, value: object, tools_allowed: bool) -> list[dict[str, Any]] | None:
    """A whole conversation sent by the caller (the API), or None (the chat page sends one
    question; the conversation is ours). Each message is rebuilt from the fields OpenAI's
    format defines (role, content, name, tool_calls, tool_call_id): nothing else is sent on.
    `developer` is sent as `system`, which every provider takes. At most MAX_MESSAGES, and
    CHAT_MAX_PROMPT_CHARS characters in all. Raises RequestRefused(bad_request, param
    messages[i])."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise _messages_refused(None, _("'messages' must be a non-empty array."))
    if len(value) > MAX_MESSAGES:
        raise _messages_refused(None, _("At most %(n)d messages may be sent at once.") % {"n": MAX_MESSAGES})
    cleaned: list[dict[str, Any]] = []
    chars = 0
    for index, message in enumerate(value):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in MESSAGE_ROLES:
            raise _messages_refused(index, _("Each message needs a role: system, developer, user, assistant or tool."))
        out: dict[str, Any] = {"role": "system" if role == "developer" else role}
        content = message.get("content")
        if role == "assistant" and content is None and message.get("tool_calls"):
            out["content"] = None
        else:
            out["content"] = _message_text(content, index)
            chars += len(out["content"])
        name = message.get("name")
        if name is not None:
            if not isinstance(name, str) or not MESSAGE_NAME.fullmatch(name):
                raise _messages_refused(
                    index, _("A message's name may not hold spaces or any of < | \\ / > (at most 256 characters).")
                )
            out["name"] = name
        if role == "assistant" and message.get("tool_calls") is not None:
            if not tools_allowed:
                raise _messages_refused(index, _("Tool calls are not supported here."))
            out["tool_calls"] = _tool_calls_clean(message["tool_calls"], index)
            chars += sum(len(call["function"]["arguments"]) for call in out["tool_calls"])
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not tools_allowed or not isinstance(call_id, str) or not 1 <= len(call_id) <= MAX_TOOL_CALL_ID:
                raise _messages_refused(index, _("A tool message needs the tool_call_id it answers."))
            out["tool_call_id"] = call_id
        cleaned.append(out)
    json_value_check(cleaned, param="messages")
    if chars > settings.CHAT_MAX_PROMPT_CHARS:
        raise RequestRefused(
            ErrorCode.CONTENT_TOO_LONG,
            _("The messages are too long (at most %(limit)d characters in all).")
            % {"limit": settings.CHAT_MAX_PROMPT_CHARS},
            param="messages",
        )
    return cleaned


def text_is_sendable(text: str) -> bool:
    return not _UNSENDABLE.search(text)


def json_value_check(value: object, *, param: str | None = None) -> None:
    """A parsed JSON value holds no unsendable text (in keys or strings), no NaN or infinity
    (Python's json reads them; JSON has no such numbers) and nests at most MAX_NESTING
    levels. Iterative: a value deep enough to matter would overflow a recursive walk (and
    the provider call's own serialisation). Raises RequestRefused(bad_request) naming `param`."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not text_is_sendable(item):
                raise RequestRefused(ErrorCode.BAD_REQUEST, UNSENDABLE_TEXT, param=param)
        elif isinstance(item, float) and not math.isfinite(item):
            raise RequestRefused(ErrorCode.BAD_REQUEST, _("Numbers must be finite (no NaN or Infinity)."), param=param)
        elif isinstance(item, (dict, list)):
            if depth > MAX_NESTING:
                raise RequestRefused(
                    ErrorCode.BAD_REQUEST,
                    _("The request nests deeper than %(n)d levels.") % {"n": MAX_NESTING},
                    param=param,
                )
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
