"""Run any of the server adapters in a background thread, with a recording handler.

Every adapter is driven the same way (``with running_server(kind, handler, ...) as address``) so
one hostile test can be parametrised over all of them: asyncio, anyio on asyncio, anyio on trio,
threads and the single-threaded selectors server.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from esmtp_core import MailParams, RcptParams, Reply
from transports.handler import Envelope, Handler, Session

ADAPTERS = ("asyncio", "anyio-asyncio", "anyio-trio", "threads", "sockets")


def adapter_available(kind: str) -> bool:
    """Whether the optional libraries adapter ``kind`` needs are installed (anyio, trio)."""
    needs = {"anyio-asyncio": ("anyio",), "anyio-trio": ("anyio", "trio")}.get(kind, ())
    return all(importlib.util.find_spec(name) is not None for name in needs)


def adapter_params() -> list[Any]:
    """pytest parameters for every adapter, skipped when an optional library it needs is missing
    (the ``[test]`` extra installs them all, so CI runs every one)."""
    return [
        pytest.param(
            kind,
            marks=pytest.mark.skipif(not adapter_available(kind), reason=f"{kind}: no anyio/trio"),
        )
        for kind in ADAPTERS
    ]


@dataclass(frozen=True)
class Delivered:
    """A message the handler accepted: envelope and exact content."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes


class RecordingHandler(Handler):
    """Accepts everything (passwords ``secret``) and records what the server executed.

    ``commands`` lists ``(verb, argument)`` for every MAIL and RCPT the server passed to the
    application: a command smuggled inside DATA or injected before TLS shows up here.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.commands: list[tuple[str, str]] = []
        self.messages: list[Delivered] = []
        self.disconnects = 0

    def mail(self, session: Session, address: str, params: MailParams) -> Reply | None:
        with self.lock:
            self.commands.append(("MAIL", address))
        return None

    def rcpt(self, session: Session, address: str, params: RcptParams) -> Reply | None:
        with self.lock:
            self.commands.append(("RCPT", address))
        return None

    def message(self, session: Session, envelope: Envelope, content: bytes) -> Reply | None:
        with self.lock:
            self.messages.append(
                Delivered(envelope.mail_from, tuple(envelope.rcpt_to), bytes(content))
            )
        return None

    def check_password(
        self, session: Session, username: str, password: str, *, authzid: str | None = None
    ) -> bool:
        return password == "secret"

    def disconnect(self, session: Session) -> None:
        with self.lock:
            self.disconnects += 1
            self.lock.notify_all()

    def wait_disconnects(self, count: int, timeout: float = 20.0) -> None:
        """Block until ``count`` connections have ended (the server calls ``disconnect``)."""
        with self.lock:
            if not self.lock.wait_for(lambda: self.disconnects >= count, timeout):
                raise TimeoutError(f"{self.disconnects} of {count} connections ended")


def _async_runner(
    kind: str, make: Callable[[], Any], ready: threading.Event, box: dict[str, Any]
) -> None:
    """Run an asyncio or anyio server until ``box["stop"]`` is called from another thread."""

    async def main_asyncio() -> None:
        server = make()
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        box["address"] = server.address
        box["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        ready.set()
        await stop.wait()
        await server.shutdown(timeout=5)

    async def main_anyio() -> None:
        import anyio  # noqa: PLC0415  (optional dependency, only for the anyio adapter)
        import anyio.from_thread  # noqa: PLC0415

        server = make()
        await server.start()
        stop = anyio.Event()
        token = anyio.lowlevel.current_token()
        box["address"] = server.address
        box["stop"] = lambda: anyio.from_thread.run_sync(stop.set, token=token)
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve_forever)
            ready.set()
            await stop.wait()
            await server.shutdown(timeout=5)

    try:
        if kind == "asyncio":
            asyncio.run(main_asyncio())
        else:
            import anyio  # noqa: PLC0415

            anyio.run(main_anyio, backend=kind.split("-")[1])
    except BaseException as exc:  # reported to the test thread
        box["error"] = exc
        ready.set()


@contextlib.contextmanager
def running_server(kind: str, handler: Handler, **options: Any) -> Iterator[tuple[str, int]]:
    """Start adapter ``kind`` on a free loopback port with ``options`` (the ``Server``
    constructor's keywords); yield its address; shut it down gracefully afterwards."""
    options.setdefault("port", 0)
    options.setdefault("host", "127.0.0.1")
    if kind in ("threads", "sockets"):
        module = importlib.import_module(f"transports.{kind}")
        server = module.Server(handler, **options)
        server.start()
        loop_thread = None
        if kind == "sockets":
            loop_thread = threading.Thread(target=server.serve_forever, daemon=True)
            loop_thread.start()
        try:
            yield server.address
        finally:
            server.shutdown(timeout=5)
            if loop_thread is not None:
                loop_thread.join(10)
        return
    name = "transports.asyncio" if kind == "asyncio" else "transports.anyio"
    module = importlib.import_module(name)
    ready = threading.Event()
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=_async_runner,
        args=(kind, lambda: module.Server(handler, **options), ready, box),
        daemon=True,
    )
    thread.start()
    ready.wait(20)
    if "error" in box:
        raise box["error"]
    try:
        yield box["address"]
    finally:
        box["stop"]()
        thread.join(15)
        if "error" in box:
            raise box["error"]
