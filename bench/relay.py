"""What relaying a streamed reply costs webchat, at classroom scale (issue 10's table).

    .venv/bin/python bench/relay.py [--streams 50] [--chunks 200] [--interval-ms 20] [--soak]
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/relay.py
    .venv/bin/python bench/relay.py --via api        # the same streams over /v1 (personal keys)
    .venv/bin/python bench/relay.py --via litellm    # ... through LiteLLM's proxy (bench/litellm.sh)

It starts the fake upstream (bench/upstream.py: pre-encoded SSE, a chunk every 20 ms) and
webchat's ASGI server (uvicorn, DEBUG off) pinned to one core with taskset, signs N students
in (real sessions) and opens N websocket chats (`--via chat`), or gives each a personal API
key and streams over /v1 (`--via api`, which also measures non-streamed requests), or
starts LiteLLM's proxy pinned the same way in place of webchat (`--via litellm`). The bench itself and the upstream run on the
other core. It prints, each against the same streams read straight from the upstream in the
same run:

- CPU per turn: the server's CPU time for N x rounds one-chunk turns, divided by the turns.
- CPU per chunk: the server's CPU time while all N long streams are mid-reply, divided by
  the chunks relayed in that window.
- added time to first token: N sends at once (burst), and N sends spread over 4 s.
- the gap between chunks (p99), as a ratio of the upstream's own.
- with --soak: the server's RSS before and after --soak-minutes at N concurrent streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _setup import ROOT, django_up, percentile, server_env

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its finished threads included."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def loop_cpu_seconds(pid: int) -> float:
    """CPU of the server's main thread alone: the event loop (the rest is its thread pools)."""
    return cpu_seconds_of(Path(f"/proc/{pid}/task/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    user, system = user_system_seconds_of(stat)
    return user + system


def user_system_seconds_of(stat: Path) -> tuple[float, float]:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pinned(command: list[str], core: int) -> list[str]:
    return (["taskset", "-c", str(core)] + command) if shutil.which("taskset") else command


@dataclass
class Stream:
    """One reply as the client saw it."""

    sent: float
    chunks: list[float] = field(default_factory=list)
    done: float | None = None
    status: str = ""

    @property
    def ttft(self) -> float:
        return self.chunks[0] - self.sent

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.chunks, self.chunks[1:], strict=False)]


class Counter:
    def __init__(self) -> None:
        self.chunks = 0


VIA_LABEL = {"chat": "webchat (websocket)", "api": "webchat /v1", "litellm": "LiteLLM proxy"}
LITELLM_KEY = "sk-bench-litellm-master"


# --- set-up ------------------------------------------------------------------------------------


def litellm_start(args: argparse.Namespace, upstream_url: str) -> subprocess.Popen:
    """LiteLLM's proxy in webchat's place, pinned to the same core, one worker, serving the
    bench's models from the same fake upstream."""
    if not Path(args.litellm).exists():
        raise SystemExit(f"no LiteLLM at {args.litellm}: run bench/litellm.sh first")
    models = ["bench-1", f"bench-{args.chunks}", "bench-50"]
    config = Path(tempfile.mkdtemp(prefix="litellm-bench-")) / "config.yaml"
    lines = ["model_list:"]
    for model in models:
        lines += [
            f"  - model_name: {model}",
            "    litellm_params:",
            f"      model: openai/{model}",
            f"      api_base: {upstream_url}",
            "      api_key: unused",
        ]
    lines += ["general_settings:", f"  master_key: {LITELLM_KEY}", "litellm_settings:", "  telemetry: false"]
    config.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "DISABLE_SCHEMA_UPDATE": "true"}
    env.pop("DATABASE_URL", None)  # LiteLLM reads it too; it runs without a database here
    return subprocess.Popen(
        pinned([args.litellm, "--config", str(config), "--port", str(args.port), "--num_workers", "1"], 0),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def database_prepare(*, streams: int, chunks: int, upstream_url: str) -> tuple[list[str], list[str]]:
    """Students of one class with a quota they will not reach, a provider at the fake
    upstream, and a signed-in session and a personal API key per student. Returns the
    session cookies and the keys."""
    from decimal import Decimal

    from django.test import Client

    from apps.accounts.models import User
    from apps.accounts.services import classroom_get_or_create, enrollment_add, user_upsert
    from apps.billing.models import QuotaPolicy
    from apps.gateway.services import api_key_create
    from apps.providers.catalog import catalog_apply
    from apps.providers.models import ChatModel, ModelPrice, Provider

    def model(name: str) -> dict[str, object]:
        return {
            "name": name,
            "display_name": name,
            "context_window": 128000,
            "max_output_tokens": 4096,
            "input_per_million": "1.00",
            "output_per_million": "2.00",
            "currency": "CNY",
            "effective_from": "2025-01-01",
        }

    catalog_apply(
        entries=[
            {
                "slug": "benchai",
                "name_en": "Bench",
                "name_zh": "Bench",
                "base_url": upstream_url,
                "signup_url": "",
                "auth_style": "none",
                "is_demo": False,
                "sort_order": 90,
                "models": [model("bench-1"), model(f"bench-{chunks}"), model("bench-50")],
            }
        ],
        provider_model=Provider,
        chat_model_model=ChatModel,
        price_model=ModelPrice,
    )
    Provider.objects.filter(slug="benchai").update(base_url=upstream_url)
    teacher, _ = user_upsert(username="bench-teacher", role=User.Role.TEACHER)
    classroom, _ = classroom_get_or_create(name="bench", teacher=teacher)
    QuotaPolicy.objects.update_or_create(
        classroom=classroom,
        defaults={
            "period": "month",
            "student_token_limit": 10**12,
            "student_cost_limit": Decimal(10**6),
            "class_token_pool": 10**14,
            "rpm": 10**6,
            "tpm": 2 * 10**9,  # an int column on PostgreSQL
        },
    )
    cookies, keys = [], []
    for index in range(streams):
        student, _ = user_upsert(username=f"bench-student-{index}", role=User.Role.STUDENT)
        enrollment_add(classroom=classroom, student=student)
        client = Client()
        client.force_login(student)
        cookies.append(client.cookies["sessionid"].value)
        keys.append(api_key_create(user=student, name="bench")[1])
    return cookies, keys


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


# --- the two kinds of client -------------------------------------------------------------------


class Chat:
    """One student's websocket."""

    def __init__(self, socket: object, counter: Counter) -> None:
        self.socket = socket
        self.counter = counter

    async def turn(self, model: str, content: str = "Explain tokens in one line.") -> Stream:
        stream = Stream(sent=time.perf_counter())
        await self.socket.send(
            json.dumps({"type": "chat.send", "conversation": None, "model": model, "content": content})
        )
        while True:
            frame = json.loads(await self.socket.recv())
            kind = frame["type"]
            if kind == "chat.delta":
                stream.chunks.append(time.perf_counter())
                self.counter.chunks += 1
            elif kind == "chat.error" and frame.get("code") == "busy":
                # chat.done reached us a moment before the server's turn ended: send again.
                await asyncio.sleep(0.005)
                await self.socket.send(
                    json.dumps({"type": "chat.send", "conversation": None, "model": model, "content": content})
                )
            elif kind in ("chat.done", "chat.error"):
                stream.done = time.perf_counter()
                stream.status = frame.get("status") or frame.get("code", "")
                return stream


async def direct_stream(
    http: object, url: str, model: str, counter: Counter, headers: dict[str, str] | None = None
) -> Stream:
    """A reply streamed over OpenAI's HTTP API: read straight from the upstream (the
    baseline), or through /v1 or LiteLLM with a key in `headers`. Content chunks counted
    as they arrive, whatever the JSON spacing."""
    stream = Stream(sent=time.perf_counter())
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Explain tokens in one line."}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.stream("POST", f"{url}/chat/completions", json=body, headers=headers or {}) as response:
        if response.status_code != 200:
            stream.status = f"http {response.status_code}: {(await response.aread())[:200]!r}"
            return stream
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:]).get("choices") or [{}]
                if (delta[0].get("delta") or {}).get("content"):
                    stream.chunks.append(time.perf_counter())
                    counter.chunks += 1
    stream.done = time.perf_counter()
    stream.status = "complete"
    return stream


async def direct_request(http: object, url: str, model: str, headers: dict[str, str] | None = None) -> float:
    """One non-streamed request; returns its latency in seconds."""
    started = time.perf_counter()
    body = {"model": model, "messages": [{"role": "user", "content": "Explain tokens in one line."}]}
    response = await http.post(f"{url}/chat/completions", json=body, headers=headers or {})
    if response.status_code != 200:
        raise SystemExit(f"non-streamed request failed: {response.status_code} {response.text[:200]}")
    return time.perf_counter() - started


class HttpTurns:
    """One student's turns over an OpenAI-compatible HTTP API (webchat's /v1, or LiteLLM)."""

    def __init__(self, http: object, url: str, key: str, counter: Counter, name: object) -> None:
        self.http, self.url, self.counter, self.name = http, url, counter, name
        self.headers = {"Authorization": f"Bearer {key}"}

    async def turn(self, model: str) -> Stream:
        return await direct_stream(self.http, self.url, self.name(model), self.counter, self.headers)


async def spread(tasks: list, seconds: float) -> list[Stream]:
    """Start the coroutine factories evenly over `seconds`."""

    async def later(index: int, factory: object) -> Stream:
        await asyncio.sleep(seconds * index / max(len(tasks), 1))
        return await factory()

    return list(await asyncio.gather(*(later(i, f) for i, f in enumerate(tasks))))


# --- measurements ------------------------------------------------------------------------------


def ttfts(streams: list[Stream]) -> list[float]:
    return [s.ttft for s in streams if s.chunks]


def all_gaps(streams: list[Stream]) -> list[float]:
    return [gap for s in streams for gap in s.gaps()]


async def mid_stream_cpu(pid: int, counter: Counter, run: object) -> tuple[list[Stream], float, float]:
    """Run the long streams while sampling the server's CPU and the chunks relayed; return
    CPU seconds per chunk over the window where every stream is mid-reply, and the part of
    it spent in the kernel (system time: the sockets' reads, writes and polls)."""
    samples: list[tuple[float, float, float, int]] = []
    task = asyncio.ensure_future(run)
    stat = Path(f"/proc/{pid}/stat")
    while not task.done():
        samples.append((time.perf_counter(), *user_system_seconds_of(stat), counter.chunks))
        await asyncio.sleep(0.1)
    streams = task.result()
    start = max(s.chunks[0] for s in streams if s.chunks) + 0.2
    end = min(s.chunks[-1] for s in streams if s.chunks) - 0.2
    window = [s for s in samples if start <= s[0] <= end]
    if len(window) < 2 or window[-1][3] == window[0][3]:
        return streams, float("nan"), float("nan")
    first, last = window[0], window[-1]
    chunks = last[3] - first[3]
    user, system = last[1] - first[1], last[2] - first[2]
    return streams, (user + system) / chunks, system / chunks


def ms(value: float) -> str:
    return f"{value * 1000:,.1f} ms"


def added(value: float) -> str:
    """A time added to the upstream's own, signed: a p99 through webchat may come out below
    the direct one's when the direct run met a slower moment."""
    return f"{value * 1000:+,.1f} ms"


async def bench(
    args: argparse.Namespace, cookies: list[str], keys: list[str], upstream_url: str, server: subprocess.Popen
) -> None:
    import httpx2
    from websockets.asyncio.client import connect

    pid = server.pid  # taskset execs the server: same process
    counter = Counter()
    long_model, short_model = f"benchai/bench-{args.chunks}", "benchai/bench-1"
    sockets = []
    if args.via == "chat":
        sockets = [
            await connect(
                f"ws://127.0.0.1:{args.port}/ws/chat/",
                origin=f"http://127.0.0.1:{args.port}",
                additional_headers={"Cookie": f"sessionid={cookie}"},
                max_size=None,
                open_timeout=30,
            )
            for cookie in cookies
        ]
    limits = httpx2.Limits(max_connections=args.streams * 4, max_keepalive_connections=args.streams * 4)
    async with httpx2.AsyncClient(timeout=120, limits=limits) as http:
        if args.via == "chat":
            chats: list = [Chat(socket, counter) for socket in sockets]
            served_url, name = "", lambda model: model
        else:
            if args.via == "api":
                served_url, served_key = f"http://127.0.0.1:{args.port}/v1", None
                name = lambda model: model  # noqa: E731
            else:  # litellm: its model names are the upstream's (bench/litellm.sh)
                served_url, served_key = f"http://127.0.0.1:{args.port}/v1", LITELLM_KEY
                name = lambda model: model.split("/", 1)[1]  # noqa: E731
            chats = [HttpTurns(http, served_url, served_key or key, counter, name) for key in keys[: args.streams]]
        # Warm up both paths: connections, imports, caches.
        for _ in range(2):
            await asyncio.gather(*(chat.turn(short_model) for chat in chats))
            await asyncio.gather(*(direct_stream(http, upstream_url, "bench-1", counter) for _ in chats))
        rss_before = rss_mb(pid)
        profiler = None
        if args.profile:
            # Sampled stacks of the server during the measured phases (collapsed format:
            # one line per stack with its count; see `py-spy record --help`).
            profiler = subprocess.Popen(  # noqa: ASYNC220 (once, before the measured phases)
                [
                    str(ROOT / ".venv" / "bin" / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--output",
                    args.profile,
                    "--rate",
                    "200",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            await asyncio.sleep(1)

        # CPU per turn: one-chunk turns, every socket `rounds` times.
        cpu0, loop0 = cpu_seconds(pid), loop_cpu_seconds(pid)
        kernel0 = user_system_seconds_of(Path(f"/proc/{pid}/stat"))[1]
        for _ in range(args.rounds):
            streams = await asyncio.gather(*(chat.turn(short_model) for chat in chats))
            failed = [s.status for s in streams if s.status != "complete"]
            if failed:
                raise SystemExit(f"turns failed: {failed[:5]}")
        per_turn = (cpu_seconds(pid) - cpu0) / (args.rounds * len(chats))
        per_turn_loop = (loop_cpu_seconds(pid) - loop0) / (args.rounds * len(chats))
        per_turn_kernel = (user_system_seconds_of(Path(f"/proc/{pid}/stat"))[1] - kernel0) / (args.rounds * len(chats))

        # Burst of long streams: TTFT, gaps, CPU per chunk mid-stream.
        direct_burst = await asyncio.gather(
            *(direct_stream(http, upstream_url, f"bench-{args.chunks}", counter) for _ in chats)
        )
        burst, per_chunk, per_chunk_kernel = await mid_stream_cpu(
            pid, counter, asyncio.gather(*(chat.turn(long_model) for chat in chats))
        )

        # The same number of sends spread over 4 s.
        direct_spread = await spread(
            [lambda: direct_stream(http, upstream_url, "bench-50", counter) for _ in chats], args.spread_seconds
        )
        spread_streams = await spread(
            [lambda chat=chat: chat.turn("benchai/bench-50") for chat in chats], args.spread_seconds
        )

        # Non-streamed requests (the API only): CPU and added latency per request.
        non_stream = None
        if args.via != "chat":
            direct_latency = await asyncio.gather(*(direct_request(http, upstream_url, "bench-1") for _ in chats))
            cpu0 = cpu_seconds(pid)
            latency: list[float] = []
            for _ in range(args.rounds):
                latency += await asyncio.gather(
                    *(
                        direct_request(http, served_url, name(short_model), chat.headers)
                        for chat in chats  # type: ignore[attr-defined]
                    )
                )
            non_stream = (
                (cpu_seconds(pid) - cpu0) / (args.rounds * len(chats)),
                percentile(latency, 0.99) - percentile(list(direct_latency), 0.99),
            )

        soak = None
        if args.soak:
            deadline = time.monotonic() + args.soak_minutes * 60
            turns = 0

            async def loop(chat: Chat) -> None:
                nonlocal turns
                while time.monotonic() < deadline:
                    await chat.turn(long_model)
                    turns += 1

            # One round first so the pools and caches reach their steady size.
            await asyncio.gather(*(chat.turn(long_model) for chat in chats))
            soak_start = rss_mb(pid)
            await asyncio.gather(*(loop(chat) for chat in chats))
            soak = (soak_start, rss_mb(pid), turns)

    for chat_socket in sockets:
        await chat_socket.close()
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=30)

    burst_added = percentile(ttfts(burst), 0.99) - percentile(ttfts(direct_burst), 0.99)
    spread_p50 = percentile(ttfts(spread_streams), 0.50) - percentile(ttfts(direct_spread), 0.50)
    spread_p99 = percentile(ttfts(spread_streams), 0.99) - percentile(ttfts(direct_spread), 0.99)
    gap_ratio = percentile(all_gaps(burst), 0.99) / percentile(all_gaps(direct_burst), 0.99)
    print()
    print(
        f"| per ASGI process ({args.streams} streams, {args.chunks} chunks every {args.interval_ms:g} ms) "
        f"| {VIA_LABEL[args.via]} | goal |"
    )
    print("| --- | --- | --- |")
    print(f"| CPU per turn (everything but the chunks) | {ms(per_turn)} (kernel {ms(per_turn_kernel)}) | <= 4 ms |")
    print(
        f"| CPU per relayed chunk (mid-stream) | {per_chunk * 1e6:,.0f} us "
        f"(kernel {per_chunk_kernel * 1e6:,.0f} us) | <= 50 us |"
    )
    print(f"| {args.streams} sends at once: added TTFT p99 | {added(burst_added)} | <= +200 ms |")
    print(
        f"| {args.streams} sends spread over {args.spread_seconds:g} s: added TTFT p50 / p99 "
        f"| {added(spread_p50)} / {added(spread_p99)} | <= +5 / +25 ms |"
    )
    print(f"| gap between chunks p99 vs the upstream's | {gap_ratio:.2f}x | <= 1.1x |")
    if non_stream is not None:
        print(f"| non-streamed request: CPU per request | {ms(non_stream[0])} | |")
        print(f"| {args.streams} non-streamed at once: added latency p99 | {added(non_stream[1])} | |")
    print()
    print(
        f"upstream direct: TTFT p50 {ms(percentile(ttfts(direct_burst), 0.5))}, p99 "
        f"{ms(percentile(ttfts(direct_burst), 0.99))}; gap p99 {ms(percentile(all_gaps(direct_burst), 0.99))}"
    )
    print(
        f"burst through {VIA_LABEL[args.via]}: TTFT p50 {ms(percentile(ttfts(burst), 0.5))}, "
        f"p99 {ms(percentile(ttfts(burst), 0.99))}; "
        f"gap p99 {ms(percentile(all_gaps(burst), 0.99))}"
    )
    print(
        f"CPU per turn by thread: event loop {ms(per_turn_loop)}, thread pools (database, rendering) "
        f"{ms(per_turn - per_turn_loop)}"
    )
    print(f"server RSS after warm-up: {rss_before:.1f} MB")
    if soak is not None:
        before, after, turns = soak
        print(
            f"soak: {args.soak_minutes:g} min, {turns} turns at {args.streams} concurrent streams: RSS "
            f"{before:.1f} MB -> {after:.1f} MB ({(after - before) / before * 100:+.1f}%)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=4, help="one-chunk turns per socket for CPU per turn")
    parser.add_argument("--spread-seconds", type=float, default=4.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--upstream-port", type=int, default=8766)
    parser.add_argument("--profile", metavar="FILE", help="record the server with py-spy into FILE (collapsed)")
    parser.add_argument("--soak", action="store_true")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument(
        "--via", choices=sorted(VIA_LABEL), default="chat", help="websocket chats, /v1, or LiteLLM's proxy"
    )
    parser.add_argument(
        "--litellm",
        default=str(Path(os.environ.get("LITELLM_VENV", "/tmp/litellm-bench")) / "bin" / "litellm"),
        help="the litellm command of a throwaway venv (bench/litellm.sh makes one)",
    )
    args = parser.parse_args()
    for port in (args.port, args.upstream_port):
        if port_taken(port):  # else the bench would measure whatever already listens there
            raise SystemExit(f"something already listens on port {port}: stop it, or pass --port / --upstream-port")

    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1 % os.cpu_count()})  # the bench and upstream: the other core
    upstream = subprocess.Popen(
        pinned(
            [
                sys.executable,
                str(ROOT / "bench" / "upstream.py"),
                "--port",
                str(args.upstream_port),
                "--interval-ms",
                str(args.interval_ms),
            ],
            1,
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    server = None
    try:
        upstream.stdout.readline()  # "ready <port>"
        upstream_url = f"http://127.0.0.1:{args.upstream_port}/v1"
        os.environ.update({k: v for k, v in server_env(args.port).items() if k not in os.environ or k == "DEBUG"})
        database = django_up()
        cookies, keys = database_prepare(streams=args.streams, chunks=args.chunks, upstream_url=upstream_url)
        from django.db import connections

        connections.close_all()
        print(f"database: {database}; server pinned to core 0; {args.streams} streams via {args.via}", flush=True)
        server = (litellm_start(args, upstream_url) if args.via == "litellm" else None) or subprocess.Popen(
            pinned(
                [
                    str(ROOT / ".venv" / "bin" / "uvicorn"),
                    "webchat.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(args.port),
                    "--lifespan",
                    "off",
                    "--ws",
                    "websockets-sansio",
                    "--ws-per-message-deflate",
                    "false",
                    "--ws-max-size",
                    "262144",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                0,
            ),
            cwd=ROOT,
            env=server_env(args.port),
        )
        asyncio.run(wait_for_port(args.port, timeout=120))
        asyncio.run(bench(args, cookies, keys, upstream_url, server))
    finally:
        for process, stop in ((server, signal.SIGINT), (upstream, signal.SIGTERM)):
            if process is not None:
                process.send_signal(stop)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
