"""A fake OpenAI-compatible provider: a real HTTP server on 127.0.0.1.

It speaks the chat-completions wire protocol (JSON and SSE) and has knobs for the faults a
real provider shows: delays, 429 with Retry-After, 5xx, 401, hanging, and a stream that
drops in the middle. Tests queue `Behaviour`s; each request takes the next one (or the
default when the queue is empty) and is recorded for assertions.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    status: int = 200
    chunks: list[str] = field(default_factory=lambda: ["Hello", ", ", "class", "!"])
    delay: float = 0.0  # seconds before each chunk
    headers_delay: float = 0.0  # seconds before the response starts
    retry_after: str | None = None
    drop_after: int | None = None  # cut the connection after this many chunks
    include_usage: bool = True  # send the usage chunk when the client asks for it
    usage: tuple[Any, Any] | None = None  # (prompt, completion), any JSON values; default: made up from the text
    error_message: str = "fake upstream error"
    redirect_to: str | None = None  # answer 307 to this URL instead
    stall_before: int | None = None  # go silent before this chunk index...
    stall: float = 0.0  # ...for this many seconds
    raw_events: list[str] | None = None  # stream these `data:` payloads verbatim instead of a reply, then end
    cut_at_end: bool = False  # end raw_events by cutting the connection (no body end, no [DONE] unless sent)
    error_padding: int = 0  # bytes of filler added to an error body's message
    gzip: bool = False  # JSON bodies (errors, non-stream replies) sent gzip-compressed
    ignore_stream: bool = False  # answer `stream: true` with one JSON chat.completion, as some servers do
    stream_content_type: str = "text/event-stream"  # what a stream is labelled (some servers say application/json)
    json_body: str | None = None  # answer with this body verbatim (200, application/json)
    tool_call: dict[str, Any] | None = None  # a non-stream reply calls this tool ({"name", "arguments"})


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeUpstream:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.queue: list[Behaviour] = []
        self.default = Behaviour()
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        # Bearer tokens the chat endpoint accepts; None accepts any (or none).
        self.accepted_bearers: set[str] | None = None
        # ERNIE-style token endpoint: the client id/secret it accepts, and tokens it issued.
        self.token_credentials: tuple[str, str] = ("", "")
        self.issued_tokens: list[str] = []
        self.server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self.server.daemon_threads = True
        # A short poll so stop() returns at once (serve_forever checks for shutdown this often).
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """Back to a fresh server's state, for the next test. Handlers still sleeping from the
        previous test wake up and end (they wait on the old `closing` event)."""
        self.closing.set()
        with self.lock:
            self.closing = threading.Event()
            self.queue.clear()
            self.default = Behaviour()
            self.requests.clear()
            self.accepted_bearers = None
            self.token_credentials = ("", "")
            self.issued_tokens.clear()

    def push(self, *behaviours: Behaviour) -> None:
        with self.lock:
            self.queue.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.queue.pop(0) if self.queue else self.default

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)

    @property
    def token_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/oauth/2.0/token"

    def token_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if "/oauth/2.0/token" in r.path]

    def chat_requests(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]


def _handler_for(upstream: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _json(
            self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None, compress: bool = False
        ) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if compress:
                body = gzip.compress(body)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _record(self, body: dict[str, Any]) -> None:
            upstream.record(
                RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )

        def do_GET(self) -> None:
            self._record({})
            bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if upstream.accepted_bearers is not None and bearer not in upstream.accepted_bearers:
                self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
                return
            behaviour = upstream.next_behaviour() if upstream.queue else upstream.default
            if behaviour.status != 200:
                self._error(behaviour)
                return
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def _error(self, behaviour: Behaviour) -> None:
            extra = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            message = behaviour.error_message + "x" * behaviour.error_padding
            self._json(
                behaviour.status, {"error": {"message": message, "type": "fake"}}, extra, compress=behaviour.gzip
            )

        def _token(self) -> None:
            from urllib.parse import parse_qs, urlsplit

            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if (query.get("client_id"), query.get("client_secret")) != upstream.token_credentials:
                self._json(401, {"error": "invalid_client", "error_description": "unknown client id"})
                return
            token = f"access-token-{len(upstream.issued_tokens) + 1}"
            with upstream.lock:
                upstream.issued_tokens.append(token)
            self._json(200, {"access_token": token, "expires_in": 2592000})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            self._record(body)
            if "/oauth/2.0/token" in self.path:
                self._token()
                return
            bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if upstream.accepted_bearers is not None and bearer not in upstream.accepted_bearers:
                self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
                return
            behaviour = upstream.next_behaviour()
            if behaviour.redirect_to:
                self.send_response(307)
                self.send_header("Location", behaviour.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if behaviour.headers_delay and self._sleep(behaviour.headers_delay):
                return
            if behaviour.status != 200:
                self._error(behaviour)
                return
            text = "".join(behaviour.chunks)
            prompt_tokens, completion_tokens = behaviour.usage or (
                sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) + 7,
                max(len(behaviour.chunks), 1),
            )
            numbers = all(isinstance(n, int) for n in (prompt_tokens, completion_tokens))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens if numbers else None,
            }
            model = body.get("model", "fake-model")
            if not body.get("stream") or behaviour.ignore_stream:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if behaviour.tool_call is not None:
                    message = {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": behaviour.tool_call}
                    ]}  # fmt: skip
                finish = "tool_calls" if behaviour.tool_call is not None else "stop"
                self._json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                        "usage": usage,
                    },
                )
                return
            if behaviour.json_body is not None:
                raw = behaviour.json_body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            self.send_response(200)
            self.send_header("Content-Type", behaviour.stream_content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def event(payload: dict[str, Any] | str) -> bytes:
                data = payload if isinstance(payload, str) else json.dumps(payload)
                return f"data: {data}\n\n".encode()

            def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
                return {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }

            try:
                if behaviour.raw_events is not None:
                    for data in behaviour.raw_events:
                        if behaviour.delay and self._sleep(behaviour.delay):
                            return
                        self._send_chunk(event(data))
                    if behaviour.cut_at_end:
                        self.connection.shutdown(2)
                        return
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                self._send_chunk(event(chunk({"role": "assistant", "content": ""}, None)))
                for index, piece in enumerate(behaviour.chunks):
                    if behaviour.drop_after is not None and index >= behaviour.drop_after:
                        # Half a chunk, then the connection goes away: a real mid-stream drop.
                        self.wfile.write(b'40\r\ndata: {"trunc')
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    if behaviour.delay and self._sleep(behaviour.delay):
                        return
                    if behaviour.stall_before == index and self._sleep(behaviour.stall):
                        return
                    self._send_chunk(event(chunk({"content": piece}, None)))
                self._send_chunk(event(chunk({}, "stop")))
                if behaviour.include_usage and (body.get("stream_options") or {}).get("include_usage"):
                    self._send_chunk(
                        event(
                            {
                                "id": "chatcmpl-fake",
                                "object": "chat.completion.chunk",
                                "created": int(time.time()),
                                "model": model,
                                "choices": [],
                                "usage": usage,
                            }
                        )
                    )
                self._send_chunk(event("[DONE]"))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                return  # the client went away (a stop): nothing more to send

        def _send_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _sleep(self, seconds: float) -> bool:
            """Sleep, waking early when the server shuts down. True when shutting down."""
            return upstream.closing.wait(seconds)

    return Handler
