"""anyio server: one task per connection, each a thin loop around the shared driver."""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass, field

import anyio
import anyio.abc
import anyio.streams.stapled
import anyio.to_thread
from anyio.streams.tls import TLSAttribute, TLSStream

from .._base import ServerBase, busy_reply
from .._driver import AsyncServerDriver
from ..handler import AsyncHandler, Handler

__all__ = ["Server"]

logger = logging.getLogger("transports.server")

_READ_SIZE = 65536
#: Seconds a read deadline may differ from the scope's current one before it is moved.
_DEADLINE_SLACK = 0.001
_STREAM_ERRORS = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)


@dataclass(eq=False)
class _Connection:
    stream: anyio.abc.ByteStream
    driver: AsyncServerDriver | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    # One writer at a time: the connection's own task and a shutdown both flush the core, and
    # taking data_to_send() under the lock keeps the bytes in order.
    send_lock: anyio.Lock = field(default_factory=anyio.Lock)
    done: anyio.Event = field(default_factory=anyio.Event)


class Server(ServerBase[Handler | AsyncHandler]):
    """An SMTP/LMTP server on anyio (asyncio or trio backend).

    ::

        server = Server(MyHandler(), port=0)
        await server.start()
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve_forever)
            ...
            await server.shutdown()

    A synchronous :class:`~transports.handler.Handler` runs in worker threads
    (``anyio.to_thread.run_sync``); an :class:`~transports.handler.AsyncHandler` runs in the
    connection's task (write it with anyio to run on both backends).
    """

    def _setup(self) -> None:
        self._listener: anyio.streams.stapled.MultiListener[anyio.abc.SocketStream] | None = None
        self._connections: dict[_Connection, None] = {}
        # anyio objects need a running event loop: they are made in start().
        self._accept_scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._closing = False

    async def start(self) -> None:
        """Bind and listen (connections are accepted by :meth:`serve_forever`)."""
        self._stopped = anyio.Event()
        self._accept_scope = anyio.CancelScope()
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self._listener = listener
        local = listener.extra(anyio.abc.SocketAttribute.local_address)  # noqa: S610
        self._address = (str(local[0]), int(local[1]))
        logger.info("listening on %s:%d (anyio)", *self._address)

    async def serve_forever(self) -> None:
        """Accept and serve connections until :meth:`shutdown` completes."""
        if self._listener is None:
            await self.start()
        assert self._listener is not None
        assert self._stopped is not None
        assert self._accept_scope is not None
        async with anyio.create_task_group() as group:
            with self._accept_scope:
                async with anyio.create_task_group() as acceptors:
                    for listener in self._listener.listeners:
                        acceptors.start_soon(self._accept, listener, group)
            await self._stopped.wait()

    async def _accept(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], group: anyio.abc.TaskGroup
    ) -> None:
        assert isinstance(listener, anyio.abc.SocketListener)
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                logger.warning("accept failed: %s", exc)
                await anyio.sleep(0.1)
                continue
            group.start_soon(self._serve_connection, stream)

    async def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop listening, let every transaction in flight finish (421 to anything after it),
        then wait up to ``timeout`` seconds for the connections to end and cancel the rest."""
        self._closing = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        if self._listener is not None:
            await self._listener.aclose()
        for record in list(self._connections):
            await self._flush(record, shutdown=True)
        with anyio.move_on_after(timeout):
            for record in list(self._connections):
                await record.done.wait()
        for record in list(self._connections):
            record.scope.cancel()
            await record.done.wait()
        if self._stopped is not None:
            self._stopped.set()

    async def _flush(self, record: _Connection, *, shutdown: bool = False) -> None:
        driver = record.driver
        if driver is None:
            return
        # The lock's checkpoint is kept on purpose: taking it with acquire_nowait() saved user
        # time but cost more system time than it saved (replies no longer batched with other
        # connections' work; measured with 20 sessions under smtp-source).
        async with record.send_lock:
            if shutdown:
                driver.start_shutdown()
            data = driver.data_to_send()
            if data:
                try:
                    await record.stream.send(data)
                except _STREAM_ERRORS:
                    if shutdown:
                        record.scope.cancel()
                        return
                    raise
            if shutdown and driver.closed:
                record.scope.cancel()

    async def _serve_connection(self, stream: anyio.abc.ByteStream) -> None:
        record = _Connection(stream)
        self._connections[record] = None
        try:
            with record.scope:
                await self._serve(record)
        except _STREAM_ERRORS as exc:
            if record.driver is not None:
                record.driver.close_reason = f"connection error: {exc!r}"
        except Exception:
            # A bug must cost one connection, never the server (nor its task group).
            logger.exception("connection: internal error")
            if record.driver is not None:
                record.driver.close_reason = "internal error"
        finally:
            del self._connections[record]
            with anyio.CancelScope(shield=True):
                try:
                    if record.driver is not None:
                        await record.driver.finish()
                finally:
                    await anyio.aclose_forcefully(record.stream)
                    record.done.set()

    async def _serve(self, record: _Connection) -> None:
        options = self.options
        ssl_object = None
        if options.implicit_tls:
            ssl_object = await self._start_tls(record)
        if self._closing or self._at_capacity(len(self._connections) - 1):
            with anyio.move_on_after(5):
                peer = record.stream.extra(anyio.abc.SocketAttribute.remote_address, None)  # noqa: S610
                await record.stream.send(busy_reply(self.hostname, peer))
            return
        attributes = anyio.abc.SocketAttribute
        remote = record.stream.extra(attributes.remote_address, None)  # noqa: S610
        local = record.stream.extra(attributes.local_address, None)  # noqa: S610
        driver = record.driver = AsyncServerDriver(
            self.handler,
            options,
            offload=anyio.to_thread.run_sync,
            peer=remote,
            local=local,
        )
        await driver.start(ssl_object)
        while True:
            # One cancel scope per reply and the command after it (anyio's scopes cost more
            # than the SMTP work of a small command): its deadline bounds the write by the
            # command timeout, then moves to the driver's read deadline for the read.
            chunk = b""
            reading = False
            with anyio.CancelScope(deadline=_deadline(options.timeout)) as scope:
                await self._flush(record)
                if not driver.closed and not driver.want_tls:
                    deadline = _deadline(driver.read_timeout())
                    # After a reply both bounds are "timeout from now", microseconds apart:
                    # moving the deadline would cost a timer handle for nothing.
                    if abs(deadline - scope.deadline) > _DEADLINE_SLACK:
                        scope.deadline = deadline
                    reading = True
                    try:
                        chunk = await record.stream.receive(_READ_SIZE)
                    except _STREAM_ERRORS:
                        chunk = b""
            if scope.cancelled_caught:
                if not reading:
                    raise TimeoutError("writing to the client timed out")  # as fail_after
                driver.timed_out()
                continue
            if driver.closed:
                return
            if driver.want_tls:
                await driver.tls_established(await self._start_tls(record))
                continue
            await driver.receive(chunk)
            if not chunk:
                return

    async def _start_tls(self, record: _Connection) -> ssl.SSLObject:
        """The server side of a TLS handshake (implicit or after STARTTLS); the SSL object."""
        options = self.options
        assert options.tls_context is not None
        with anyio.fail_after(options.tls_handshake_timeout):
            record.stream = await TLSStream.wrap(
                record.stream,
                server_side=True,
                ssl_context=options.tls_context,
                standard_compatible=False,
            )
        return record.stream.extra(TLSAttribute.ssl_object)  # noqa: S610


def _deadline(timeout: float | None) -> float:
    """An absolute deadline on the event loop's clock (``inf``: none)."""
    return math.inf if timeout is None else anyio.current_time() + timeout
