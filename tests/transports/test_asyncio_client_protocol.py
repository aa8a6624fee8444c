"""transports.asyncio.Client over its own protocol: operations run on from the protocol's
callbacks (the task wakes once per operation), and what can break while they do: reply
timeouts, the server closing or resetting, cancellation, a flooding server (bounded buffer)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest

from transports.asyncio import Client
from transports.asyncio._client import _PAUSE_ABOVE, _ClientProtocol
from transports.errors import SMTPServerDisconnected, SMTPTimeoutError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
MESSAGE = b"Subject: t\r\n\r\nhello\r\n"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stall: bytes) -> None:
    """A small pipelining server; on a command starting with ``stall`` it stops answering."""
    writer.write(b"220 test ESMTP\r\n")
    in_data = False
    while line := await reader.readline():
        if in_data:
            if line == b".\r\n":
                in_data = False
                writer.write(b"250 2.0.0 stored\r\n")
            continue
        verb = line[:4].upper()
        if stall and line.upper().startswith(stall):
            await asyncio.sleep(30)  # bounded: the test's client gives up long before
            return
        if verb in (b"EHLO", b"LHLO"):
            writer.write(b"250-test\r\n250 PIPELINING\r\n")
        elif verb == b"DATA":
            in_data = True
            writer.write(b"354 go on\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 ok\r\n")
    writer.close()


async def _with_server(handler: Handler, body: Callable[[int], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await asyncio.wait_for(body(port), 20)
    finally:
        server.close()


def _run(handler: Handler, body: Callable[[int], Awaitable[None]]) -> None:
    asyncio.run(_with_server(handler, body))


def test_many_operations_each_complete_from_the_callbacks() -> None:
    async def body(port: int) -> None:
        async with Client("127.0.0.1", port, timeout=5) as client:
            for _ in range(20):
                result = await client.send_message(MESSAGE, "a@example.org", ["b@example.net"])
                assert result.ok
            results = await client.send_many(
                [(MESSAGE, "a@example.org", [f"r{i}@example.net"]) for i in range(50)], window=8
            )
            assert all(not isinstance(r, Exception) and r.ok for r in results)
            assert (await client.noop()).code == 250

    _run(lambda r, w: _serve(r, w, b""), body)


def test_a_reply_that_never_comes_times_out_and_closes() -> None:
    async def body(port: int) -> None:
        client = Client("127.0.0.1", port, timeout=0.3)
        await client.connect()
        started = asyncio.get_running_loop().time()
        with pytest.raises(SMTPTimeoutError):
            await client.send_message(MESSAGE, "a@example.org", ["b@example.net"])
        assert asyncio.get_running_loop().time() - started < 5
        assert not client.connected
        await client.close()

    _run(lambda r, w: _serve(r, w, b"MAIL"), body)


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_the_server_going_away_mid_operation_is_a_disconnect(reset: bool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test\r\n")
        await reader.readline()
        writer.write(b"250 PIPELINING\r\n")
        await reader.readline()  # MAIL...
        if reset:  # an RST instead of a FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    async def body(port: int) -> None:
        client = Client("127.0.0.1", port, timeout=5)
        await client.connect()
        with pytest.raises(SMTPServerDisconnected):
            await client.send_message(MESSAGE, "a@example.org", ["b@example.net"])
        assert not client.connected
        await client.close()

    _run(handler, body)


def test_cancelling_an_operation_closes_the_client() -> None:
    asked = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test\r\n")
        await reader.readline()
        writer.write(b"250 PIPELINING\r\n")
        await reader.readline()  # MAIL...: never answered
        asked.set()
        await reader.read()  # until the client closes
        writer.close()

    async def body(port: int) -> None:
        client = Client("127.0.0.1", port, timeout=30)
        await client.connect()
        task = asyncio.create_task(client.send_message(MESSAGE, "a@b.org", ["b@example.net"]))
        await asyncio.wait_for(asked.wait(), 10)  # the task now waits for the MAIL reply
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not client.connected
        await client.close()

    _run(handler, body)


class _FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def test_a_flood_with_no_read_waiting_pauses_the_transport() -> None:
    async def main() -> None:
        protocol = _ClientProtocol(asyncio.get_running_loop())
        transport = _FakeTransport()
        protocol.connection_made(transport)
        chunk = b"x" * 4096
        received = 0
        while received <= _PAUSE_ABOVE:
            view = protocol.get_buffer(-1)
            view[: len(chunk)] = chunk
            protocol.buffer_updated(len(chunk))
            received += len(chunk)
        assert transport.paused
        data = await protocol.read(1.0)
        assert data == chunk * (received // len(chunk))
        assert not transport.paused  # taken: reading goes on
        protocol.eof_received()
        assert await protocol.read(1.0) == b""
        protocol.close()

    asyncio.run(main())


def test_a_read_waits_for_bytes_and_times_out_without_them() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol = _ClientProtocol(loop)
        protocol.connection_made(_FakeTransport())

        def deliver() -> None:
            protocol.get_buffer(-1)[:3] = b"abc"
            protocol.buffer_updated(3)

        loop.call_later(0.01, deliver)
        assert await protocol.read(2.0) == b"abc"
        with pytest.raises(TimeoutError):
            await protocol.read(0.05)
        protocol.connection_lost(ConnectionResetError("reset"))
        with pytest.raises(ConnectionResetError):
            await protocol.read(1.0)
        protocol.close()

    asyncio.run(main())
