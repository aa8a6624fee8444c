"""Drive any adapter's client from synchronous test code, and small servers for client tests.

The async clients run in an anyio blocking portal (asyncio, or trio for ``anyio-trio``); every
call goes through the portal, so one test body exercises all five clients. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from _transport_harness import WAIT, Recorder
from anyio.from_thread import BlockingPortal, start_blocking_portal

from esmtp_core import MailParams, RcptParams, Reply
from transports.handler import Envelope, Session

CLIENTS = ["asyncio", "anyio-asyncio", "anyio-trio", "threads", "sockets"]


class SyncClient:
    """Any adapter's ``Client`` with blocking methods (coroutines run through the portal)."""

    def __init__(self, client: Any, portal: BlockingPortal | None) -> None:
        self.client = client
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.client, name)
        if self._portal is not None and inspect.iscoroutinefunction(value):
            portal = self._portal
            return lambda *args, **kwargs: portal.call(functools.partial(value, *args, **kwargs))
        return value


def client_class(kind: str) -> Any:
    module = {"anyio-asyncio": "anyio", "anyio-trio": "anyio"}.get(kind, kind)
    return importlib.import_module(f"transports.{module}").Client


@contextlib.contextmanager
def open_client(
    kind: str, host: str, port: int, *, connect: bool = True, **options: Any
) -> Iterator[SyncClient]:
    """A ``kind`` client for ``host:port`` (connected unless ``connect=False``); QUIT and close
    at the end whatever happened."""
    options.setdefault("timeout", WAIT)
    client = client_class(kind)(host, port, **options)
    with contextlib.ExitStack() as stack:
        portal = None
        if kind.startswith("anyio") or kind == "asyncio":
            backend = "trio" if kind == "anyio-trio" else "asyncio"
            portal = stack.enter_context(start_blocking_portal(backend))
        sync = SyncClient(client, portal)
        try:
            if connect:
                sync.connect()
            yield sync
        finally:
            sync.quit()


@dataclass
class ParamsRecorder(Recorder):
    """A :class:`Recorder` that also keeps the MAIL and RCPT parameters it saw, and answers
    LMTP's end of data per recipient (refusing recipients starting with ``lmtp-refuse``)."""

    mail_params: list[MailParams] = field(default_factory=list)
    rcpt_params: list[RcptParams] = field(default_factory=list)

    def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        self.mail_params.append(params)
        return super().mail(session, address, params)

    def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        self.rcpt_params.append(params)
        return super().rcpt(session, address, params)

    def message(self, session: Session, envelope: Envelope, content: bytes) -> Any:
        result = super().message(session, envelope, content)
        if session.lmtp:
            return [
                Reply.make(550, "5.2.1", "Mailbox full") if r.startswith("lmtp-refuse") else None
                for r in envelope.rcpt_to
            ]
        return result


@dataclass
class ScriptedServer:
    """A one-connection raw server on 127.0.0.1 for misbehaving-server tests.

    ``script`` gets the accepted socket and does whatever the test needs (greet with 421, say
    nothing, send garbage). ``received`` collects what the client sent when the script uses
    :meth:`read_until`.
    """

    script: Callable[[socket.socket, ScriptedServer], None]
    listener: socket.socket = field(init=False)
    received: bytearray = field(default_factory=bytearray)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    def read_until(self, sock: socket.socket, marker: bytes) -> None:
        while marker not in self.received:
            data = sock.recv(65536)
            if not data:
                return
            self.received += data


@contextlib.contextmanager
def scripted_server(
    script: Callable[[socket.socket, ScriptedServer], None],
) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script)
    server.listener = socket.create_server(("127.0.0.1", 0))
    server.listener.settimeout(WAIT)

    def run() -> None:
        try:
            sock, _ = server.listener.accept()
        except OSError:
            server.done.set()
            return
        with sock:
            sock.settimeout(WAIT)
            with contextlib.suppress(OSError):
                script(sock, server)
            # Stay open until the test is finished with the client (no EOF surprises).
            server.done.wait(WAIT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.done.set()
        server.listener.close()
        thread.join(WAIT)
