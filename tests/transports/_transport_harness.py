"""Run any adapter's server in the background for a test, and a minimal raw SMTP peer.

Async servers run in an anyio blocking portal (its own event loop thread, asyncio or trio);
the blocking ones in their own threads. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from anyio.from_thread import start_blocking_portal

from esmtp_core import MailParams, RcptParams, Reply
from transports.handler import AsyncHandler, Envelope, Handler, Session

ADAPTERS = ["asyncio", "anyio-asyncio", "anyio-trio", "threads", "sockets"]
ASYNC_ADAPTERS = ["asyncio", "anyio-asyncio", "anyio-trio"]
WAIT = 10.0  # seconds: the bound on every wait in these tests


@dataclass
class Stored:
    mail_from: str
    rcpt_to: list[str]
    content: bytes
    tls: bool
    user: str | None
    hello: str | None


@dataclass
class Recorder(Handler):
    """A thread-safe handler recording what happens; ``fail_on`` makes hooks raise."""

    messages: list[Stored] = field(default_factory=list)
    aborted: int = 0
    connects: int = 0
    disconnects: int = 0
    fail_mail_from: str = "boom@example.com"
    fail_message_with: bytes = b"X-Fail: yes"
    users: dict[str, str] = field(default_factory=lambda: {"alice": "wonderland"})
    condition: threading.Condition = field(default_factory=threading.Condition)

    def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        if address == self.fail_mail_from:
            raise RuntimeError("handler failure requested by the test")
        return None

    def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        if address.startswith("nobody@"):
            return Reply.make(550, "5.1.1", "No such user")
        return None

    def message(self, session: Session, envelope: Envelope, content: bytes) -> Reply | None:
        if self.fail_message_with in content:
            raise RuntimeError("message failure requested by the test")
        with self.condition:
            self.messages.append(
                Stored(
                    envelope.mail_from,
                    list(envelope.rcpt_to),
                    content,
                    session.tls_active,
                    session.authenticated,
                    session.hello_name,
                )
            )
            self.condition.notify_all()
        return None

    def message_aborted(self, session: Session, envelope: Envelope) -> None:
        super().message_aborted(session, envelope)
        with self.condition:
            self.aborted += 1
            self.condition.notify_all()

    def check_password(
        self, session: Session, username: str, password: str, *, authzid: str | None = None
    ) -> bool:
        return self.users.get(username) == password

    def connect(self, session: Session) -> Reply | None:
        with self.condition:
            self.connects += 1
        return None

    def disconnect(self, session: Session) -> None:
        with self.condition:
            self.disconnects += 1
            self.condition.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        with self.condition:
            assert self.condition.wait_for(predicate, timeout), "timed out waiting for the server"


class AsyncRecorder(AsyncHandler):
    """An async handler storing whole messages (works on asyncio and trio: no library calls)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def message(self, session: Session, envelope: Envelope, content: bytes) -> None:
        self.messages.append(content)


@dataclass
class Running:
    server: Any
    host: str
    port: int
    begin_shutdown: Callable[..., Future[Any] | threading.Thread]


@contextlib.contextmanager
def run_server(kind: str, handler: Handler | AsyncHandler, **options: Any) -> Iterator[Running]:
    """Start ``kind``'s server on 127.0.0.1:0 with ``options``; shut it down afterwards."""
    options.setdefault("port", 0)
    options.setdefault("host", "127.0.0.1")
    if kind in ASYNC_ADAPTERS:
        module = "transports.asyncio" if kind == "asyncio" else "transports.anyio"
        backend = "trio" if kind == "anyio-trio" else "asyncio"
        server_class = importlib.import_module(module).Server
        with start_blocking_portal(backend) as portal:
            server = server_class(handler, **options)
            portal.call(server.start)
            serving = portal.start_task_soon(server.serve_forever)

            def begin_async_shutdown(grace: float = WAIT) -> Future[Any]:
                return portal.start_task_soon(server.shutdown, grace)

            try:
                yield Running(server, *server.address, begin_shutdown=begin_async_shutdown)
            finally:
                portal.call(server.shutdown, WAIT)
                serving.result(WAIT)
        return
    server_class = importlib.import_module(f"transports.{kind}").Server
    server = server_class(handler, **options)
    server.start()
    loop = None
    if kind == "sockets":
        loop = threading.Thread(target=server.serve_forever, daemon=True)
        loop.start()

    def begin_shutdown(grace: float = WAIT) -> threading.Thread:
        thread = threading.Thread(target=server.shutdown, args=(grace,), daemon=True)
        thread.start()
        return thread

    try:
        yield Running(server, *server.address, begin_shutdown=begin_shutdown)
    finally:
        server.shutdown(WAIT)
        if loop is not None:
            loop.join(WAIT)
            assert not loop.is_alive()


class RawPeer:
    """A bare SMTP peer over a socket, for what smtplib will not do (stall, vanish mid-DATA)."""

    def __init__(self, host: str, port: int, timeout: float = WAIT) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply as (code, last line's text); (0, "") at EOF."""
        lines = []
        while True:
            line = self.file.readline(4096)
            if not line:
                return 0, ""
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(line[:3]), line[4:].decode().strip()

    def command(self, data: bytes) -> tuple[int, str]:
        self.send(data)
        return self.reply()

    def at_eof(self) -> bool:
        """True when the server closed the connection (reads nothing more)."""
        return self.file.read(1) == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()
