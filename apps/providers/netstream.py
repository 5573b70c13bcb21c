"""httpcore's network backend on asyncio's own transports and protocols.

httpcore reads a response through anyio by default: every read opens a cancel scope with its
own timer, asks sniffio which async library runs (a `getpid` system call on Python 3.11), and
yields to the event loop once more before reading. At one read per streamed chunk, for every
student at once, that was about a third of relaying a chunk. Here a read is a future that the
protocol completes when bytes arrive, with one timer for its timeout; and whether an idle
pooled connection is still usable is known without a system call, because the loop has
already told the protocol if the server sent something or hung up.

A streamed reply's body comes in HTTP/1.1 chunks, one per piece of text. h11 parses each
through its general event machinery, two events and two reads per chunk; `ConnectionPool`'s
connections read a chunked body here instead, in one pass over what arrived, and hand h11
the end of the body so the connection is kept alive exactly as before.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import h11
import httpcore2
from h11._readers import ChunkedReader
from h11._receivebuffer import ReceiveBuffer
from httpcore2._async.http11 import AsyncHTTP11Connection

# Bytes a connection may hold unread before the loop stops reading its socket (a stalled
# reader does not buffer a fast server's whole reply in memory), and where it starts again.
READ_HIGH_WATER = 256 * 1024
READ_LOW_WATER = 64 * 1024


class _Protocol(asyncio.Protocol):
    """Collects what arrives and wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pieces: list[bytes] = []
        self.size = 0
        self.closed = False  # the server sent EOF, or the connection is gone
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.pieces.append(data)
        self.size += len(data)
        if self.size > READ_HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        """Up to max_bytes of what has arrived (the caller checked there is some)."""
        first = self.pieces[0]
        if len(first) <= max_bytes and len(self.pieces) == 1:
            self.pieces.clear()  # the usual case: one piece in, one piece out, no copy
        else:
            joined = b"".join(self.pieces)
            first, rest = joined[:max_bytes], joined[max_bytes:]
            self.pieces[:] = [rest] if rest else []
        self.size -= len(first)
        if self.reading_paused and self.size <= READ_LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return first


class AsyncioStream(httpcore2.AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()
        # The read timeout: one timer per connection, moved on lazily, not one per read (a
        # streamed reply waits for every chunk; each timer made and cancelled also stayed
        # in the loop's heap until its time came).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.pieces and not protocol.closed:
            waiter = protocol.waiter = self._loop.create_future()
            if timeout is None:
                self._deadline = math.inf  # this read waits as long as it takes
            else:
                self._deadline = deadline = self._loop.time() + timeout
                timer = self._timer
                if timer is None or timer.when() > deadline:  # none yet, or set for a longer timeout
                    if timer is not None:
                        timer.cancel()
                    self._timer = self._loop.call_at(deadline, self._timed_out)
            try:
                await waiter
            finally:
                protocol.waiter = None
        if protocol.pieces:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore2.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the server closed the connection

    def _timed_out(self) -> None:
        """The timer came due: fail the waiting read if its own deadline has passed, else
        wait on until it does (the read began later than the timer)."""
        self._timer = None
        waiter = self._protocol.waiter
        if waiter is None or waiter.done():
            return  # no read waiting: the next one sets the timer again
        now = self._loop.time()
        if now >= self._deadline:
            waiter.set_exception(httpcore2.ReadTimeout("read timed out"))
        elif self._deadline != math.inf:
            # uvloop may fire a timer up to a millisecond early: not again at once for that.
            self._timer = self._loop.call_at(max(self._deadline, now + 0.001), self._timed_out)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.closed or self._transport.is_closing():
            raise httpcore2.WriteError(str(protocol.error or "the connection is closed"))
        self._transport.write(buffer)
        if protocol.writing_paused:
            drained = protocol.drained = protocol.drained or self._loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await drained
            except TimeoutError:
                raise httpcore2.WriteTimeout("write timed out") from None
            if protocol.error is not None:
                raise httpcore2.WriteError(str(protocol.error))

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        if self._timer is not None:  # the TLS stream that follows keeps its own
            self._timer.cancel()
            self._timer = None
        try:
            async with asyncio.timeout(timeout):
                transport = await self._loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore2.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.abort()
            raise httpcore2.ConnectError(str(exc)) from None
        if transport is None:  # the connection closed during the handshake
            raise httpcore2.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = transport  # type: ignore[assignment]
        return AsyncioStream(transport, self._protocol)  # type: ignore[arg-type]

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Asked of idle pooled connections: anything arrived, or the server hung up, means
            # the connection cannot take another request.
            protocol = self._protocol
            return bool(protocol.pieces) or protocol.closed or self._transport.is_closing()
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


async def _connected(
    connect: Any, timeout: float | None, socket_options: Iterable[httpcore2.SOCKET_OPTION] | None
) -> AsyncioStream:
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await connect(_Protocol)
    except TimeoutError:
        raise httpcore2.ConnectTimeout("connecting timed out") from None
    except OSError as exc:
        raise httpcore2.ConnectError(str(exc) or type(exc).__name__) from None
    raw = transport.get_extra_info("socket")
    for option in socket_options or ():
        raw.setsockopt(*option)
    return AsyncioStream(transport, protocol)


class AsyncioBackend(httpcore2.AsyncNetworkBackend):
    """Connections as asyncio transports (see the module's docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        return await _connected(
            lambda factory: loop.create_connection(factory, host, port, local_addr=local),
            timeout,
            socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        return await _connected(lambda factory: loop.create_unix_connection(factory, path), timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF, as h11 accepts it (at most 20 hex digits,
# extensions ignored, trailing blanks tolerated).
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\r\n]*)?[ \t]*")
# No chunk-size line longer than h11's own bound on what it buffers, however the bytes arrive.
_LINE_MAX = AsyncHTTP11Connection.MAX_INCOMPLETE_EVENT_SIZE


class HTTP11Connection(AsyncHTTP11Connection):
    """httpcore's HTTP/1.1 connection, reading chunked response bodies itself."""

    async def _receive_response_body(self, request: httpcore2.Request) -> AsyncGenerator[bytes]:
        state = self._h11_state
        buffer = chunked_body_start(state)
        if buffer is None:  # a length-delimited body, or an h11 whose insides have changed
            async for piece in super()._receive_response_body(request):
                yield piece
            return
        timeout = request.extensions.get("timeout", {}).get("read", None)
        read = self._network_stream.read
        size = self.READ_NUM_BYTES
        # What h11 had already taken in with the headers is ours now.
        data = bytes(buffer.maybe_extract_at_most(len(buffer)) or b"")
        at = 0
        while True:
            end = data.find(b"\r\n", at)
            if end < 0 or end - at > _LINE_MAX:
                data, at, end = await _line(data, at, end, read, size, timeout)
            header = _CHUNK_HEADER.fullmatch(data, at, end)
            if header is None:
                raise httpcore2.RemoteProtocolError(f"illegal chunk header: {data[at : end + 2]!r}")
            left = int(header[1], 16)
            at = end + 2
            if left == 0:
                break
            while True:
                piece = data[at : at + left]
                if piece:
                    at += len(piece)
                    left -= len(piece)
                    yield piece
                if not left:
                    break
                data, at = await _more(read, size, timeout), 0
            while len(data) - at < 2:
                data = data[at:] + await _more(read, size, timeout)
                at = 0
            if data[at : at + 2] != b"\r\n":
                raise httpcore2.RemoteProtocolError(f"malformed chunk footer: {data[at : at + 2]!r}")
            at += 2
        # The trailer section (usually empty) is h11's to read, on its rules (bare LF line
        # ends, field syntax, its bound on size), as is anything after it: the connection
        # goes back to the pool, or is closed, exactly as before.
        state.receive_data(b"0\r\n" + data[at:])
        event = await self._receive_event(timeout=timeout)
        if type(event) is not h11.EndOfMessage:
            raise httpcore2.RemoteProtocolError("the chunked body did not end cleanly")


def chunked_body_start(state: h11.Connection) -> ReceiveBuffer | None:
    """h11's receive buffer, if h11 is about to read a chunked body from its start (and its
    insides are still those of the pinned version): else None."""
    reader, buffer = getattr(state, "_reader", None), getattr(state, "_receive_buffer", None)
    if (
        type(reader) is ChunkedReader
        and isinstance(buffer, ReceiveBuffer)
        and getattr(reader, "_bytes_in_chunk", None) == 0
        and getattr(reader, "_bytes_to_discard", None) == b""
        and getattr(reader, "_reading_trailer", None) is False
    ):
        return buffer
    return None


async def _line(data: bytes, at: int, end: int, read: Any, size: int, timeout: float | None) -> tuple[bytes, int, int]:
    """For a line at `at` whose end was not found (`end` < 0) or is too far: (data, at, end)
    with the whole line at data[at:end], its CRLF after. A line that arrives in pieces is
    gathered in one buffer and each piece searched once (a server sending a byte at a time
    costs linear time); none is longer than _LINE_MAX."""
    if end < 0:
        pending = bytearray(data[at:])
        while end < 0:
            if len(pending) > _LINE_MAX:
                break
            searched = max(len(pending) - 1, 0)
            pending += await _more(read, size, timeout)
            end = pending.find(b"\r\n", searched)
        data, at = bytes(pending), 0
    if end < 0 or end - at > _LINE_MAX:
        raise httpcore2.RemoteProtocolError("a line of the chunked body is too long")
    return data, at, end


async def _more(read: Any, size: int, timeout: float | None) -> bytes:
    data: bytes = await read(size, timeout=timeout)
    if not data:
        raise httpcore2.RemoteProtocolError(
            "peer closed connection without sending complete message body (incomplete chunked read)"
        )
    return data


class HTTPConnection(httpcore2.AsyncHTTPConnection):
    """httpcore's connection to one origin, speaking HTTP/1.1 through HTTP11Connection."""

    async def handle_async_request(self, request: httpcore2.Request) -> httpcore2.Response:
        if not self.can_handle_request(request.url.origin):
            raise RuntimeError(f"Attempted to send request to {request.url.origin} on connection to {self._origin}")
        try:
            async with self._request_lock:
                if self._connection is None:
                    stream = await self._connect(request)
                    self._connection = HTTP11Connection(
                        origin=self._origin, stream=stream, keepalive_expiry=self._keepalive_expiry
                    )
        except BaseException:
            self._connect_failed = True
            raise
        return await self._connection.handle_async_request(request)


class ConnectionPool(httpcore2.AsyncConnectionPool):
    """httpcore's pool (HTTP/1.1 only, no proxy), of HTTPConnection."""

    def create_connection(self, origin: httpcore2.Origin) -> httpcore2.AsyncConnectionInterface:
        assert self._proxy is None and not self._http2, "HTTPConnection speaks HTTP/1.1 directly"
        return HTTPConnection(
            origin=origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            http1=True,
            http2=False,
            retries=self._retries,
            local_address=self._local_address,
            uds=self._uds,
            network_backend=self._network_backend,
            socket_options=self._socket_options,
        )
