"""The one error vocabulary: every code a caller may see, and the exception for a refused request.

As Zulip's `ErrorCode` + `JsonableError` (with `RateLimitedError`'s seconds to wait): one
exception class carrying the code, the message and the extras an entry point needs, and
the codes as a `StrEnum` every app imports from here. A member compares equal to its
string, and the strings are the wire values the README documents ("Websocket protocol"):
they never change.

Imports nothing from apps/, so accounts, providers, billing and conversations alike may
import it (the layers contract in pyproject.toml analyses this package too).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.utils.functional import Promise


class ErrorCode(StrEnum):
    # A request refused before anything was written or called (RequestRefused).
    BAD_REQUEST = "bad_request"
    CONTENT_TOO_LONG = "content_too_long"
    CONTEXT_TOO_LONG = "context_length_exceeded"  # OpenAI's code: the prompt is over the model's window
    NOT_FOUND = "not_found"
    CLASS_CLOSED = "class_closed"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    NO_CREDENTIAL = "no_credential"
    MODEL_UNPRICED = "model_unpriced"  # its price's currency has no exchange rate in force
    QUOTA_EXCEEDED = "quota_exceeded"  # with reset_at
    RATE_LIMITED = "rate_limited"  # with retry_after
    REQUEST_TOO_LARGE = "request_too_large"  # more tokens than a minute's limit: never fits, no retry
    SIGNED_OUT = "signed_out"
    INVALID_API_KEY = "invalid_api_key"  # the /v1 API: a missing, unknown, revoked or expired key
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"  # the /v1 API: a retry while the first runs
    API_ACCESS_OFF = "api_access_off"  # the /v1 API: a valid key, but its owner's class switched the API off
    UNKNOWN_URL = "unknown_url"  # the /v1 API: a path it does not offer (/v1/responses, say)
    METHOD_NOT_ALLOWED = "method_not_allowed"  # the /v1 API: GET /v1/chat/completions, say
    # The chat socket's own refusals.
    BUSY = "busy"
    NOT_RUNNING = "not_running"
    COMPARE_OFF = "compare_off"  # the class's teacher switched side-by-side comparing off
    TOO_MANY_SOCKETS = "too_many_sockets"
    # A provider fault that ended a call (providers.client.UpstreamError); a reply it ended
    # is saved with the code.
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_AUTH_FAILED = "upstream_auth_failed"
    UPSTREAM_BLOCKED = "upstream_blocked"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_UNREACHABLE = "upstream_unreachable"
    UPSTREAM_DROPPED = "upstream_dropped"
    UPSTREAM_TOO_LARGE = "upstream_too_large"
    UPSTREAM_REJECTED = "upstream_rejected"
    UPSTREAM_ERROR = "upstream_error"
    # A reply or a frame ended by the server itself.
    INTERNAL_ERROR = "internal_error"
    WORKER_LOST = "worker_lost"


class RequestRefused(Exception):
    """A request refused before anyone was called. Nothing was written.

    Raised while a request is checked (conversations.params, frames), prepared
    (conversations.pipeline) and reserved (billing.hold_take); every entry point turns it
    into its own error shape (a websocket error frame, an HTTP error). Extras, where they
    apply: `retry_after` (seconds, rate_limited), `rate_limit` (which of the minute's
    limits: "requests" or "tokens"), `reset_at` (when the quota resets, quota_exceeded),
    `param` (the request field at fault, bad_request).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: Promise | str,
        *,
        retry_after: int | None = None,
        reset_at: datetime | None = None,
        param: str | None = None,
        rate_limit: str | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.param = param
        self.rate_limit = rate_limit


# What json.loads raises on input that is no JSON value we can use: not JSON, not UTF-8
# (UnicodeDecodeError is a ValueError), or brackets nested past the parser's depth.
BAD_JSON = (ValueError, RecursionError)
