"""One error vocabulary (webchat/errors.py): every code a caller sees is an ErrorCode member,
its wire string is the one the README documents, and nothing raises a code spelled by hand."""

from __future__ import annotations

import ast
from pathlib import Path

from apps.conversations.errors import UPSTREAM_MESSAGES
from webchat.errors import ErrorCode

APPS = Path(__file__).resolve().parent.parent / "apps"
# The websocket protocol's and the /v1 API's codes (README), and the two a saved reply may
# carry besides the upstream ones.
DOCUMENTED = {
    "bad_request",
    "content_too_long",
    "context_length_exceeded",
    "not_found",
    "class_closed",
    "model_not_allowed",
    "no_credential",
    "model_unpriced",
    "quota_exceeded",
    "rate_limited",
    "request_too_large",
    "busy",
    "not_running",
    "compare_off",
    "signed_out",
    "invalid_api_key",
    "api_access_off",
    "idempotency_in_progress",
    "unknown_url",
    "method_not_allowed",
    "too_many_sockets",
    "upstream_rate_limited",
    "upstream_auth_failed",
    "upstream_timeout",
    "upstream_unreachable",
    "upstream_rejected",
    "upstream_error",
    "upstream_blocked",
    "upstream_dropped",
    "upstream_too_large",
    "internal_error",
    "worker_lost",
}
# Whatever is raised or sent with a code takes it as its first argument.
TAKES_A_CODE = {"RequestRefused", "UpstreamError", "ReplyRefused", "send_error"}


def test_the_codes_are_the_documented_wire_strings() -> None:
    assert {code.value for code in ErrorCode} == DOCUMENTED
    assert ErrorCode.QUOTA_EXCEEDED == "quota_exceeded"  # a member is its string: frames and rows unchanged


def test_no_code_is_spelled_by_hand() -> None:
    spelled = []
    for path in APPS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in TAKES_A_CODE and any(
                isinstance(part, ast.Constant) and isinstance(part.value, str) for part in ast.walk(node.args[0])
            ):
                spelled.append(f"{path.relative_to(APPS.parent)}:{node.lineno}")
    assert not spelled, f"codes written as strings, not ErrorCode members: {spelled}"


def test_every_fault_that_ends_a_reply_has_a_message_for_the_student() -> None:
    ending = {code for code in ErrorCode if code.startswith("upstream_")} | {
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.WORKER_LOST,
    }
    assert ending == set(UPSTREAM_MESSAGES)
