"""The provider calls' network backend (apps/providers/netstream.py) against real servers on
127.0.0.1: plain and TLS, keep-alive, a server that hangs up, stalls or sends a lot, and
chunked bodies cut every way a network can cut them."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import httpcore2
import httpx2
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.providers import netstream
from apps.providers.netstream import AsyncioBackend

# The HTTP/1.1 transport over sockets of its own: no database, cache or channel layer.
pytestmark = pytest.mark.backend_free

Runs = Callable[[Coroutine[Any, Any, None]], None]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@pytest.fixture(params=["asyncio", "uvloop"])
def run_on(request: pytest.FixtureRequest) -> Runs:
    """Each test on asyncio's own loop and on uvloop (what uvicorn runs the site on)."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(coroutine: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(coroutine)

    return run


@asynccontextmanager
async def serving(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def request_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def pool(**kwargs: object) -> httpcore2.AsyncConnectionPool:
    return netstream.ConnectionPool(network_backend=AsyncioBackend(), **kwargs)  # type: ignore[arg-type]


def self_signed(tmp_path: Path, host: str = "localhost") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for `host`, and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive server: one 200 per request until the client hangs up."""
    try:
        while True:
            await request_head(reader)
            writer.write(OK)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def counting(inner: Handler) -> tuple[Handler, list[asyncio.StreamWriter]]:
    """`inner`, and the connections it has been given."""
    connections: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await inner(reader, writer)

    return handler, connections


def test_keep_alive_reuses_the_connection(run_on: Runs) -> None:
    handler, connections = counting(answer_each)

    async def run() -> None:
        async with serving(handler) as port, pool() as http:
            for _ in range(3):
                response = await http.request("GET", f"http://127.0.0.1:{port}/")
                assert (response.status, response.content) == (200, b"ok")

    run_on(run())
    assert len(connections) == 1


def test_an_idle_connection_the_server_closed_is_not_reused(run_on: Runs) -> None:
    """The server answers once and hangs up: the pool sees it (no request is sent on a dead
    connection, no error) and opens a new one."""
    connections = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await request_head(reader)
        writer.write(OK)
        await writer.drain()
        writer.close()

    async def run() -> None:
        async with serving(handler) as port, pool() as http:
            first = await http.request("GET", f"http://127.0.0.1:{port}/")
            await asyncio.sleep(0.05)  # the hang-up reaches the loop
            second = await http.request("GET", f"http://127.0.0.1:{port}/")
            assert first.status == second.status == 200

    run_on(run())
    assert len(connections) == 2


def test_is_readable_means_data_or_a_hang_up(run_on: Runs) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    async def run() -> None:
        async with serving(handler) as port:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port)
            assert stream.get_extra_info("is_readable") is False
            assert stream.get_extra_info("server_addr")[1] == port
            assert stream.get_extra_info("socket") is not None
            await stream.write(b"x")
            for _ in range(100):
                if stream.get_extra_info("is_readable"):
                    break
                await asyncio.sleep(0.01)
            assert stream.get_extra_info("is_readable") is True
            assert await stream.read(100) == b""  # EOF, as httpcore expects it
            await stream.aclose()

    run_on(run())


def test_a_stalled_body_times_out_as_a_read_timeout(run_on: Runs) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    async def run() -> None:
        timeout = httpx2.Timeout(0.3, connect=2)
        async with serving(handler) as port, httpx2.AsyncClient(transport=_transport(), timeout=timeout) as http:
            async with http.stream("GET", f"http://127.0.0.1:{port}/") as response:
                pieces = []
                with pytest.raises(httpx2.ReadTimeout):
                    async for piece in response.aiter_raw():
                        pieces.append(piece)
                assert b"".join(pieces) == b"abc"

    run_on(run())


def test_a_connection_reset_mid_body_is_a_read_error(run_on: Runs) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        writer.transport.abort()  # RST, not FIN

    async def run() -> None:
        async with serving(handler) as port, httpx2.AsyncClient(transport=_transport()) as http:
            with pytest.raises((httpx2.ReadError, httpx2.RemoteProtocolError)):
                await http.get(f"http://127.0.0.1:{port}/")

    run_on(run())


def test_nothing_listening_is_a_connect_error(run_on: Runs) -> None:
    async def run() -> None:
        server = await asyncio.start_server(answer_each, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(httpcore2.ConnectError):
            await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)

    run_on(run())


def test_a_large_body_arrives_whole_through_a_slow_reader(run_on: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the high-water mark the socket is not read until the reader catches up; nothing
    is lost or reordered."""
    monkeypatch.setattr(netstream, "READ_HIGH_WATER", 64 * 1024)
    monkeypatch.setattr(netstream, "READ_LOW_WATER", 16 * 1024)
    body = bytes(range(256)) * 16 * 1024  # 4 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    async def run() -> None:
        async with serving(handler) as port, httpx2.AsyncClient(transport=_transport()) as http:
            async with http.stream("GET", f"http://127.0.0.1:{port}/") as response:
                received = bytearray()
                async for piece in response.aiter_raw():
                    received += piece
                    await asyncio.sleep(0.001)
                assert received == body

    run_on(run())


def test_tls_with_a_verified_certificate(run_on: Runs, tmp_path: Path) -> None:
    server_context, client_context = self_signed(tmp_path)

    async def run() -> None:
        async with serving(answer_each, server_context) as port, pool(ssl_context=client_context) as http:
            for _ in range(2):  # the second one on the kept-alive TLS connection
                response = await http.request("GET", f"https://localhost:{port}/")
                assert (response.status, response.content) == (200, b"ok")
            (connection,) = http.connections
            assert "HTTP/1.1, IDLE, Request Count: 2" in connection.info()

    run_on(run())


def test_tls_refuses_a_certificate_for_another_host(run_on: Runs, tmp_path: Path) -> None:
    server_context, client_context = self_signed(tmp_path, host="elsewhere.example")

    async def run() -> None:
        async with serving(answer_each, server_context) as port, pool(ssl_context=client_context) as http:
            with pytest.raises(httpcore2.ConnectError):
                await http.request("GET", f"https://localhost:{port}/")

    run_on(run())


def test_a_tls_handshake_that_never_answers_times_out(run_on: Runs, tmp_path: Path) -> None:
    _, client_context = self_signed(tmp_path)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def run() -> None:
        async with serving(silent) as port, pool(ssl_context=client_context) as http:
            with pytest.raises(httpcore2.ConnectTimeout):
                await http.request(
                    "GET", f"https://localhost:{port}/", extensions={"timeout": {"connect": 0.3, "read": 0.3}}
                )

    run_on(run())


def _transport() -> httpx2.AsyncHTTPTransport:
    from apps.providers.netguard import PooledTransport

    return PooledTransport(public_only=False)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


def serving_chunked(*writes: bytes, requests: int = 1, pause: float = 0.002) -> Handler:
    """Answers each request with the head then `writes`, each a separate send."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(requests):
                await request_head(reader)
                for data in writes:
                    writer.write(data)
                    await writer.drain()
                    await asyncio.sleep(pause)
            await reader.read()
        finally:
            writer.close()

    return handler


async def body_of(http: httpcore2.AsyncConnectionPool, port: int) -> list[bytes]:
    async with http.stream("GET", f"http://127.0.0.1:{port}/") as response:
        assert response.status == 200
        return [bytes(piece) async for piece in response.aiter_stream()]


@pytest.mark.parametrize(
    "cut",
    [
        "head and body together",
        "a send per chunk",
        "a byte at a time",
        "split inside the size line, the data and the CRLF",
    ],
)
def test_a_chunked_body_arrives_whole_however_the_network_cuts_it(run_on: Runs, cut: str) -> None:
    pieces = [b'data: {"a": 1}\n\n', b"x" * 3000, "中文 ✓".encode(), b"\r\n\r\n", b"0"]
    body = chunked(*pieces)
    writes = {
        "head and body together": [CHUNKED_HEAD + body],
        "a send per chunk": [CHUNKED_HEAD] + [chunked(p)[: -len(b"0\r\n\r\n")] for p in pieces] + [b"0\r\n\r\n"],
        "a byte at a time": [CHUNKED_HEAD] + [body[i : i + 1] for i in range(0, 120)] + [body[120:]],
        "split inside the size line, the data and the CRLF": [
            CHUNKED_HEAD + body[:1],
            body[1:5],
            body[5:25],
            body[25:26],
        ]
        + [body[26:]],
    }[cut]

    async def run() -> None:
        async with serving(serving_chunked(*writes, pause=0.0005)) as port, pool() as http:
            assert b"".join(await body_of(http, port)) == b"".join(pieces)

    run_on(run())


def test_chunk_extensions_upper_case_sizes_blanks_and_trailers_are_read_as_http_allows(run_on: Runs) -> None:
    body = b"5;name=value\r\nhello\r\nA \r\n0123456789\r\n0;end\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"

    async def run() -> None:
        async with serving(serving_chunked(CHUNKED_HEAD, body, requests=2)) as port, pool() as http:
            assert b"".join(await body_of(http, port)) == b"hello0123456789"
            # The trailer was read to its end: the same connection serves the next request.
            assert b"".join(await body_of(http, port)) == b"hello0123456789"
            assert len(http.connections) == 1

    run_on(run())


def test_a_streamed_body_keeps_the_connection_alive_for_the_next_request(run_on: Runs) -> None:
    handler, connections = counting(serving_chunked(CHUNKED_HEAD, chunked(b"one", b"two"), requests=3))

    async def run() -> None:
        async with serving(handler) as port, pool() as http:
            for _ in range(3):
                assert await body_of(http, port) == [b"one", b"two"]

    run_on(run())
    assert len(connections) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"zz\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"-5\r\nhello\r\n0\r\n\r\n", "illegal chunk header"),
        (b"1" * 21 + b"\r\n", "illegal chunk header"),
        (b"5\r\nhelloXY0\r\n\r\n", "malformed chunk footer"),
        (b"9" * (101 * 1024), "too long"),  # a size line with no end
        (b"5\r\nhello\r\n0\r\n" + b"X: y\r\n" * 20000, "too long"),  # a trailer with no end
        (b"5\r\nhel", "incomplete chunked read"),  # the server hangs up mid-chunk
        (b"5\r\nhello\r\n", "incomplete chunked read"),  # ... before the last chunk
        (b"0\r\nX-Trailer: 1\r\n", "unexpectedly closed"),  # ... inside the trailer (h11's words)
        (b"5\r\nhello\r\n0\r\nnot a header field\r\n\r\n", "header"),  # a trailer h11 refuses
    ],
)
def test_a_broken_chunked_body_is_a_protocol_error_after_what_arrived_whole(
    run_on: Runs, body: bytes, error: str
) -> None:
    async def run() -> None:
        # A server that sends the head and `body`, then hangs up.
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await request_head(reader)
            writer.write(CHUNKED_HEAD + body)
            await writer.drain()
            writer.close()

        async with serving(handler) as port, pool() as http:
            received = []
            with pytest.raises(httpcore2.RemoteProtocolError, match=error):
                async with http.stream("GET", f"http://127.0.0.1:{port}/") as response:
                    async for piece in response.aiter_stream():
                        received.append(bytes(piece))
            assert b"".join(received) in (b"", b"hel", b"hello")
            assert http.connections == []  # a broken connection is never reused

    run_on(run())


def test_a_length_delimited_body_is_still_read_by_h11(run_on: Runs) -> None:
    async def run() -> None:
        async with serving(answer_each) as port, pool() as http:
            async with http.stream("GET", f"http://127.0.0.1:{port}/") as response:
                assert [bytes(p) async for p in response.aiter_stream()] == [b"ok"]

    run_on(run())


def test_h11_is_still_what_the_chunked_reader_reads_after() -> None:
    """The reader takes over from h11's own state. An h11 whose insides changed would quietly
    fall back to h11's reader (correct, slower); this says so if that happens."""
    state = h11.Connection(h11.CLIENT)
    state.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    state.send(h11.EndOfMessage())
    state.receive_data(CHUNKED_HEAD + b"5\r\nhel")
    assert type(state.next_event()) is h11.Response
    buffer = netstream.chunked_body_start(state)
    assert buffer is not None and bytes(buffer) == b"5\r\nhel"
    assert type(state.next_event()) is h11.Data  # h11 reading: no longer at the start
    assert netstream.chunked_body_start(state) is None


def test_a_read_timeout_counts_from_the_read_that_waits(run_on: Runs) -> None:
    """One timer per connection, moved on lazily: a read that waits longer than its timeout
    fails, a later read gets its full time, and a read without a timeout waits as long as it
    takes even when an earlier read's timer comes due meanwhile."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for pause in (0.05, 0.8, 0.25, 0.5):
            await reader.readexactly(1)
            await asyncio.sleep(pause)
            writer.write(b"x")
            await writer.drain()
        await reader.read()
        writer.close()

    # Margins of 0.3 s or more either way: `make test` runs three suites on two cores.
    async def run() -> None:
        async with serving(handler) as port:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port)
            await stream.write(b"1")
            assert await stream.read(10, timeout=0.6) == b"x"  # well within its time
            await stream.write(b"2")
            assert await stream.read(10) == b"x"  # no timeout: 0.8 s, past the first read's timer
            await stream.write(b"3")
            # 0.25 s: within its own time (counted from the read before, 1.05 s would not be)
            assert await stream.read(10, timeout=0.6) == b"x"
            await stream.write(b"4")
            with pytest.raises(httpcore2.ReadTimeout):
                await stream.read(10, timeout=0.1)  # the answer takes 0.5 s
            await stream.aclose()

    run_on(run())


@pytest.mark.parametrize("cut", ["one send", "3000-byte sends", "the trailer a byte at a time"])
def test_long_extensions_and_trailers_are_read_alike_however_they_arrive(run_on: Runs, cut: str) -> None:
    """A 10 KiB chunk extension and a 20 KiB trailer, within h11's own bound on a line: the
    same answer however they arrive (a trailer trickling in a byte at a time is gathered, not
    searched again from its start at each byte)."""
    trailer = b"X-Long: " + b"b" * 20_000 + b"\r\n\r\n"
    head = b"5;" + b"a" * 10_000 + b"\r\nhello\r\n0\r\n"
    body = head + trailer
    writes = {
        "one send": [body],
        "3000-byte sends": [body[i : i + 3000] for i in range(0, len(body), 3000)],
        "the trailer a byte at a time": [head] + [trailer[i : i + 1] for i in range(len(trailer))],
    }[cut]

    async def run() -> None:
        handler = serving_chunked(CHUNKED_HEAD, *writes, requests=2, pause=0)
        async with serving(handler) as port, pool() as http:
            for _ in range(2):
                assert b"".join(await body_of(http, port)) == b"hello"
            assert len(http.connections) == 1

    run_on(run())


def test_a_trailer_ended_by_bare_line_feeds_is_read_as_h11_reads_it(run_on: Runs) -> None:
    """h11 reads the trailer section: a bare LF ends it (RFC 9112 allows a recipient that),
    and the connection serves the next request."""
    body = b"5\r\nhello\r\n0\r\nX-Checksum: 1\n\n"

    async def run() -> None:
        async with serving(serving_chunked(CHUNKED_HEAD + body, requests=2)) as port, pool() as http:
            for _ in range(2):
                async with asyncio.timeout(5):
                    assert b"".join(await body_of(http, port)) == b"hello"
            assert len(http.connections) == 1

    run_on(run())


def test_a_shorter_read_timeout_on_a_reused_connection_holds(run_on: Runs) -> None:
    """The connection's one timer, set for a long timeout by an earlier request, is moved
    earlier for a request with a shorter one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(OK)
        await writer.drain()
        await request_head(reader)  # the second request is never answered
        await asyncio.sleep(5)
        writer.close()

    async def run() -> None:
        async with serving(handler) as port, pool() as http:
            first = await http.request("GET", f"http://127.0.0.1:{port}/", extensions={"timeout": {"read": 5}})
            assert first.status == 200
            loop = asyncio.get_running_loop()
            began = loop.time()
            with pytest.raises(httpcore2.ReadTimeout):
                await http.request("GET", f"http://127.0.0.1:{port}/", extensions={"timeout": {"read": 0.3}})
            assert loop.time() - began < 2

    run_on(run())
