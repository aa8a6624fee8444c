"""transports.asyncio.Server as an asyncio.Protocol: what the protocol design must keep.

Handler calls that are awaited run in one worker Task per connection (current task, one context
for the session); hooks left at their defaults cost no thread; bytes that arrive while a hook is
awaited are queued in order; a client that never reads its replies is cut; a half-closed client
still gets its replies; a hook stuck past the shutdown grace period is cancelled and the final
notices still run. The server runs in the test's own event loop; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from esmtp_core import MailParams, RcptParams, Reply, ServerConfig
from transports.asyncio import Server
from transports.handler import AsyncHandler, Envelope, Handler, MessageResult, Session

WAIT = 10.0
SESSION_VALUE: contextvars.ContextVar[str] = contextvars.ContextVar("session_value")


@contextlib.asynccontextmanager
async def serving(handler: Handler | AsyncHandler, **options: Any) -> AsyncIterator[Server]:
    options.setdefault("config", ServerConfig(hostname="mx.test"))
    server = Server(handler, host="127.0.0.1", port=0, **options)
    await server.start()
    try:
        yield server
    finally:
        await asyncio.wait_for(server.shutdown(WAIT), 2 * WAIT)


async def open_client(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(*server.address)
    assert (await read_reply(reader))[0] == 220
    return reader, writer


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One reply: (code, lines); (0, []) at EOF."""
    lines: list[str] = []
    while True:
        line = await asyncio.wait_for(reader.readline(), WAIT)
        if not line:
            return 0, lines
        lines.append(line.decode().rstrip("\r\n"))
        if line[3:4] != b"-":
            return int(line[:3]), lines


def run(coro: Any) -> None:
    asyncio.run(coro)


class SessionTasks(AsyncHandler):
    """Records the current task and a context variable in each hook; uses asyncio.timeout."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[Any] | None] = {}
        self.seen: dict[str, str | None] = {}
        self.disconnected = asyncio.Event()

    async def _note(self, name: str) -> None:
        self.tasks[name] = asyncio.current_task()
        self.seen[name] = SESSION_VALUE.get(None)
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(WAIT):  # needs a current task
                await asyncio.sleep(0)
        else:  # pragma: no cover - Python 3.10
            await asyncio.wait_for(asyncio.sleep(0), WAIT)

    async def connect(self, session: Session) -> Reply | None:
        SESSION_VALUE.set(f"session {session.id}")
        await self._note("connect")
        return None

    async def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        await self._note("mail")
        return None

    async def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        await self._note("message_end")
        return None

    async def disconnect(self, session: Session) -> None:
        await self._note("disconnect")
        self.disconnected.set()


def test_awaited_hooks_share_one_task_and_one_context() -> None:
    handler = SessionTasks()

    async def main() -> None:
        async with serving(handler) as server:
            reader, writer = await open_client(server)
            writer.write(b"EHLO client.test\r\n")
            assert (await read_reply(reader))[0] == 250
            for command, code in (
                (b"MAIL FROM:<a@example.org>\r\n", 250),
                (b"RCPT TO:<b@example.net>\r\n", 250),
                (b"DATA\r\n", 354),
                (b"Subject: t\r\n\r\nbody\r\n.\r\n", 250),
                (b"QUIT\r\n", 221),
            ):
                writer.write(command)
                assert (await read_reply(reader))[0] == code
            writer.close()
            await asyncio.wait_for(handler.disconnected.wait(), WAIT)

    run(main())
    assert set(handler.tasks) == {"connect", "mail", "message_end", "disconnect"}
    tasks = set(handler.tasks.values())
    assert len(tasks) == 1
    assert None not in tasks
    # The value set in connect() is visible in every later hook: one context per session.
    assert len(set(handler.seen.values())) == 1
    assert handler.seen["disconnect"] is not None


class OnlyMessage(Handler):
    """A synchronous handler overriding only message() and disconnect()."""

    def __init__(self) -> None:
        self.contents: list[bytes] = []

    def message(self, session: Session, envelope: Envelope, content: bytes) -> MessageResult:
        self.contents.append(content)
        return None

    def disconnect(self, session: Session) -> None:
        pass


def test_default_hooks_of_a_sync_handler_cost_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    offloaded: list[str] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(function: Callable[[], object]) -> object:
        assert isinstance(function, functools.partial)
        offloaded.append(function.func.__name__)
        return await real_to_thread(function)

    monkeypatch.setattr(asyncio, "to_thread", counting_to_thread)
    handler = OnlyMessage()

    async def main() -> None:
        async with serving(handler) as server:
            reader, writer = await open_client(server)
            for command, code in (
                (b"EHLO client.test\r\n", 250),
                (b"MAIL FROM:<a@example.org>\r\n", 250),
                (b"RCPT TO:<b@example.net>\r\n", 250),
                (b"DATA\r\n", 354),
                (b"Subject: t\r\n\r\nbody\r\n.\r\n", 250),
                (b"RSET\r\n", 250),
                (b"QUIT\r\n", 221),
            ):
                writer.write(command)
                assert (await read_reply(reader))[0] == code
            assert (await read_reply(reader))[0] == 0
            writer.close()

    run(main())
    assert handler.contents == [b"Subject: t\r\n\r\nbody\r\n"]
    # message_end is the default, but it calls the overridden message(): it runs in a thread.
    assert offloaded == ["message_end", "disconnect"]


class SlowRecipients(AsyncHandler):
    """Awaits in every RCPT (bytes keep arriving meanwhile) and refuses one address."""

    def __init__(self) -> None:
        self.recipients: list[list[str]] = []

    async def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        await asyncio.sleep(0.01)
        return Reply.make(550, "5.1.1", "No such user") if address.startswith("nobody") else None

    async def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        self.recipients.append(list(envelope.rcpt_to))
        return None


def test_pipelined_commands_behind_an_awaited_hook_keep_their_order() -> None:
    handler = SlowRecipients()
    codes: list[int] = []

    async def main() -> None:
        async with serving(handler) as server:
            reader, writer = await open_client(server)
            writer.write(b"EHLO client.test\r\n")
            assert (await read_reply(reader))[0] == 250
            # RFC 2920: everything up to DATA in one go, then the body, then QUIT, without
            # waiting; the server is busy in rcpt() while the rest arrives.
            writer.write(
                b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                b"RCPT TO:<nobody@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
            )
            await asyncio.sleep(0.005)
            writer.write(b"Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            while True:
                code, _ = await read_reply(reader)
                if not code:
                    break
                codes.append(code)
            writer.close()

    run(main())
    assert codes == [250, 250, 550, 250, 354, 250, 221]
    assert handler.recipients == [["b@example.net", "c@example.net"]]


class Disconnects(AsyncHandler):
    def __init__(self) -> None:
        self.disconnected = asyncio.Event()

    async def disconnect(self, session: Session) -> None:
        self.disconnected.set()


def test_a_client_that_never_reads_its_replies_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    """Replies pile up (EHLO answers are long); input is no longer handled once the transport's
    buffer is full, and after the command timeout without draining the connection is cut."""
    caplog.set_level(logging.INFO, logger="transports.server")
    handler = Disconnects()
    elapsed: list[float] = []

    async def main() -> None:
        config = ServerConfig(hostname="mx.test", max_commands=10**7)
        async with serving(handler, config=config, timeout=0.5) as server:
            loop = asyncio.get_running_loop()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, server.address)
            started = time.monotonic()
            flood = loop.create_task(loop.sock_sendall(sock, b"EHLO flooder.test\r\n" * 200_000))
            try:
                await asyncio.wait_for(handler.disconnected.wait(), WAIT)
                elapsed.append(time.monotonic() - started)
            finally:
                flood.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await flood
                sock.close()

    run(main())
    assert 0.4 <= elapsed[0] < WAIT
    assert "replies not read in time" in caplog.text


def test_a_half_closed_client_still_gets_its_replies() -> None:
    handler = Disconnects()

    async def main() -> None:
        async with serving(handler) as server:
            reader, writer = await open_client(server)
            writer.write(b"EHLO client.test\r\nNOOP\r\n")
            writer.write_eof()
            assert (await read_reply(reader))[0] == 250
            assert (await read_reply(reader))[0] == 250
            assert (await read_reply(reader))[0] == 0  # then the server closes
            writer.close()
            await asyncio.wait_for(handler.disconnected.wait(), WAIT)

    run(main())


class StuckDelivery(AsyncHandler):
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False
        self.aborted = 0
        self.disconnects = 0

    async def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        self.entered.set()
        try:
            await asyncio.Event().wait()  # never set: stuck
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return None  # pragma: no cover

    async def message_aborted(self, session: Session, envelope: Envelope) -> None:
        self.aborted += 1

    async def disconnect(self, session: Session) -> None:
        self.disconnects += 1


def test_a_hook_stuck_past_the_grace_period_is_cancelled_and_notices_still_run() -> None:
    handler = StuckDelivery()
    took: list[float] = []

    async def main() -> None:
        server = Server(handler, host="127.0.0.1", port=0)
        await server.start()
        reader, writer = await open_client(server)
        for command, code in (
            (b"EHLO client.test\r\n", 250),
            (b"MAIL FROM:<a@example.org>\r\n", 250),
            (b"RCPT TO:<b@example.net>\r\n", 250),
            (b"DATA\r\n", 354),
        ):
            writer.write(command)
            assert (await read_reply(reader))[0] == code
        writer.write(b"Subject: t\r\n\r\nbody\r\n.\r\n")
        await asyncio.wait_for(handler.entered.wait(), WAIT)
        started = time.monotonic()
        await asyncio.wait_for(server.shutdown(0.2), WAIT)
        took.append(time.monotonic() - started)
        assert (await read_reply(reader))[0] == 0  # cut without a reply
        writer.close()

    run(main())
    assert took[0] < 5
    assert handler.cancelled
    assert handler.aborted == 1
    assert handler.disconnects == 1


def test_an_active_session_outlives_the_command_timeout() -> None:
    """The deadline moves with every reply: commands 0.15 s apart over more than twice the
    0.4 s timeout are all answered; then silence is cut with 421 4.4.2."""
    handler = Disconnects()

    async def main() -> None:
        async with serving(handler, timeout=0.4) as server:
            reader, writer = await open_client(server)
            started = time.monotonic()
            while time.monotonic() - started < 1.0:
                writer.write(b"NOOP\r\n")
                assert (await read_reply(reader))[0] == 250
                await asyncio.sleep(0.15)
            code, lines = await read_reply(reader)
            assert code == 421
            assert "4.4.2" in lines[-1]
            writer.close()
            await asyncio.wait_for(handler.disconnected.wait(), WAIT)

    run(main())


class Bodies(AsyncHandler):
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
        await asyncio.sleep(0)  # busy: what arrives meanwhile is queued
        envelope.body_chunks.append(data)

    async def message(self, session: Session, envelope: Envelope, content: bytes) -> MessageResult:
        await asyncio.sleep(0)  # a real await while the other connection's bytes arrive
        self.bodies.append(content)
        return None


def test_concurrent_large_bodies_arrive_byte_exact() -> None:
    """Every connection reads into the server's one read buffer: bytes must be copied out
    before the next read, whichever connection it is for."""
    handler = Bodies()
    bodies = [bytes([65 + n]) * 77 + b"\r\n" for n in range(2)]

    async def send(server: Server, line: bytes) -> None:
        reader, writer = await open_client(server)
        for command, code in (
            (b"EHLO client.test\r\n", 250),
            (b"MAIL FROM:<a@example.org>\r\n", 250),
            (b"RCPT TO:<b@example.net>\r\n", 250),
            (b"DATA\r\n", 354),
        ):
            writer.write(command)
            assert (await read_reply(reader))[0] == code
        for _ in range(5000):  # ~400 KB, in many reads
            writer.write(line)
            await writer.drain()
        writer.write(b".\r\nQUIT\r\n")
        assert (await read_reply(reader))[0] == 250
        assert (await read_reply(reader))[0] == 221
        writer.close()

    async def main() -> None:
        async with serving(handler) as server:
            await asyncio.gather(*(send(server, line) for line in bodies))

    run(main())
    assert sorted(handler.bodies) == sorted(line * 5000 for line in bodies)
