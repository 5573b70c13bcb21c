"""A fast fake OpenAI-compatible upstream for benchmarks: pre-encoded SSE, no parsing per chunk.

    python bench/upstream.py --port 9100 [--interval-ms 20]

The model name says how long the reply is: `bench-200` streams 200 chunks, one every
`--interval-ms`, then a finish chunk, a usage chunk and `[DONE]`. Every chunk's bytes are
built once at start, so the upstream costs next to nothing per chunk and the figures measure
the server under test. HTTP/1.1 keep-alive, chunked transfer, `stream: false` answered as
one JSON body. It prints "ready <port>" once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

MODEL_CHUNKS = re.compile(rb'"model"\s*:\s*"bench-(\d+)"')
WORD = "token "


def _sse(payload: dict[str, object] | str) -> bytes:
    data = (payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))).encode()
    event = b"data: " + data + b"\n\n"
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


def _chunk(delta: dict[str, str], finish: str | None) -> bytes:
    return _sse(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
ROLE = _chunk({"role": "assistant", "content": ""}, None)
PIECE = _chunk({"content": WORD}, None)
FINISH = _chunk({}, "stop")
DONE = _sse("[DONE]") + b"0\r\n\r\n"


def _usage(completion: int) -> bytes:
    return _sse(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": completion, "total_tokens": 20 + completion},
        }
    )


def _json_reply(chunks: int) -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "bench",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": WORD * chunks}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": chunks, "total_tokens": 20 + chunks},
        }
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


MODELS = json.dumps({"object": "list", "data": [{"id": "bench-1", "object": "model"}]}).encode()
MODELS_REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(MODELS)).encode()
    + b"\r\n\r\n"
    + MODELS
)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, interval: float) -> None:
    usage_cache: dict[int, bytes] = {}
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            body = await reader.readexactly(length) if length else b""
            if head.startswith(b"GET"):
                writer.write(MODELS_REPLY)
                await writer.drain()
                continue
            match = MODEL_CHUNKS.search(body)
            chunks = int(match.group(1)) if match else 1
            if b'"stream":true' not in body.replace(b" ", b""):
                await asyncio.sleep(interval)
                writer.write(_json_reply(chunks))
                await writer.drain()
                continue
            writer.write(HEAD + ROLE)
            await writer.drain()
            for _ in range(chunks):
                await asyncio.sleep(interval)
                writer.write(PIECE)
                await writer.drain()
            if chunks not in usage_cache:
                usage_cache[chunks] = _usage(chunks)
            writer.write(FINISH + usage_cache[chunks] + DONE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    args = parser.parse_args()
    interval = args.interval_ms / 1000
    server = await asyncio.start_server(lambda r, w: _serve(r, w, interval), "127.0.0.1", args.port, backlog=1024)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
