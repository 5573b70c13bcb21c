"""httpcore's network backend on asyncio's own transports and protocols.

httpcore reads a response through anyio by default: every read opens a cancel scope with its
own timer, asks sniffio which async library runs (a `getpid` system call on Python 3.11), and
yields to the event loop once more before reading. At one read per streamed chunk, for every
student at once, that was about a third of relaying a chunk. Here a read is a future that the
protocol completes when bytes arrive, with one timer for its timeout; and whether an idle
pooled connection is still usable is known without a system call, because the loop has
already told the protocol if the server sent something or hung up.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2

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


def _time_out(waiter: asyncio.Future[None], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class AsyncioStream(httpcore2.AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = asyncio.get_running_loop()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.pieces and not protocol.closed:
            waiter = protocol.waiter = self._loop.create_future()
            timer = None
            if timeout is not None:
                timer = self._loop.call_later(timeout, _time_out, waiter, httpcore2.ReadTimeout("read timed out"))
            try:
                await waiter
            finally:
                protocol.waiter = None
                if timer is not None:
                    timer.cancel()
        if protocol.pieces:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore2.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the server closed the connection

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
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
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
