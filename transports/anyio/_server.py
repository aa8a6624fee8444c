"""anyio server: one task per connection, each a thin loop around the shared driver.

A plaintext connection is served on its raw non-blocking socket with anyio's readiness waits
(:func:`anyio.wait_readable` / :func:`anyio.wait_writable`): a reply is one ``send`` call that
the socket buffer almost always takes whole, and a command is one wait and one ``recv``. anyio's
``SocketStream`` costs several checkpoints and cancel scopes per operation (on asyncio a send
also takes a shielded extra turn of the event loop); with SMTP's small commands and replies that
machinery cost more than the SMTP work itself (``python -m benchmarks.profile server
anyio-asyncio``). The timeouts are one timer (cancel scope) per session rather than one per
read (see :meth:`Server._converse`). On asyncio the reads go through
:class:`~transports.anyio._asyncio_readiness.ReadWatch` (the socket stays registered with the
loop); on trio, a reply is written at once and the next ``recv`` comes after one turn of
the loop (by then the client has mostly answered), with trio's own readiness wait only when it
has not (anyio's looks the backend up on every call).

TLS (implicit, or after STARTTLS) hands the socket to an anyio ``SocketStream`` under a
``TLSStream``, which owns the socket from then on; there each read and write has its own
deadline, as a cancelled TLS operation cannot be resumed.

Needs anyio >= 4.10 (``wait_readable``/``wait_writable`` 4.7, ``notify_closing`` and
``SocketStream.from_socket`` 4.10).
"""

from __future__ import annotations

import collections
import enum
import logging
import math
import socket
import ssl
import sys
import time
import types
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.streams.stapled
import anyio.to_thread
from anyio.streams.tls import TLSAttribute, TLSStream

from .._base import ServerBase, busy_reply
from .._driver import AsyncServerDriver
from ..handler import AsyncHandler, Handler
from ._asyncio_readiness import ReadWatch, checkpoint, running_asyncio
from ._untimed import run_untimed

__all__ = ["Server"]

logger = logging.getLogger("transports.server")

_READ_SIZE = 65536
#: Connections taken from the listening socket per readiness wake-up (a burst of clients is
#: accepted without a turn of the event loop per connection, yet a flood cannot starve the rest).
_ACCEPT_BURST = 32
#: Seconds the busy ``421`` may take to go out before the connection is dropped.
_BUSY_SEND_TIMEOUT = 5.0
#: When the session's timer goes off this close to the driver's deadline (the two clocks are
#: read microseconds apart), the deadline has passed.
_TIMER_SLACK = 0.001
#: The timer is moved earlier only for a deadline earlier by more than this (seconds): moving
#: it costs a timer handle, and the deadline after a reply's write is always microseconds
#: earlier than the timer set for that write.
_MOVE_SLACK = 0.01
_STREAM_ERRORS = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)


class _Step(enum.Enum):
    """Why :meth:`Server._exchange` returned."""

    OVER = "the session ended"
    STARTTLS = "the TLS handshake is due"
    HANDLER = "a handler call is due, outside the timer that went off meanwhile"


class _Connection:
    """One client: its socket (or, once TLS is up, its stream) and its driver."""

    __slots__ = ("done", "driver", "eof", "handshaking", "pending", "reading", "scope",
                 "send_lock", "sock", "stream", "timeout", "timer", "timer_at", "watch",
                 "write_since")

    def __init__(self, sock: socket.socket, watch: ReadWatch | None, timeout: float | None) -> None:
        #: The command timeout (seconds; None: none).
        self.timeout = timeout
        #: The raw socket while the connection is plaintext; None once a stream owns it.
        self.sock: socket.socket | None = sock
        #: On asyncio, the socket's registration with the loop (see ``_asyncio_readiness``).
        self.watch = watch
        self.stream: anyio.abc.ByteStream | None = None
        self.driver: AsyncServerDriver | None = None
        self.scope = anyio.CancelScope()
        #: Bytes taken from the core but not yet written, oldest first. Whoever holds
        #: ``send_lock`` drains it; a writer that finds it non-empty queues behind it, so the
        #: connection's task and a shutdown never interleave their bytes.
        self.pending: collections.deque[bytes] = collections.deque()
        self.send_lock = anyio.Lock()
        self.done = anyio.Event()
        #: A TLS handshake is under way: nothing may be written in plaintext meanwhile.
        self.handshaking = False
        #: The session's timer (see :meth:`Server._converse`) and when it goes off, on the
        #: driver's clock (``time.monotonic``).
        self.timer = anyio.CancelScope()
        self.timer_at = math.inf
        #: The connection's task is waiting for the client's next bytes.
        self.reading = False
        #: The client closed (the driver may still owe handler calls for it).
        self.eof = False
        #: When ``pending`` last became non-empty (driver's clock): a write's time runs from it.
        self.write_since = 0.0

    def timer_off(self) -> None:
        """Switch the session's timer off (see :meth:`Server._exchange`)."""
        self.timer.deadline = self.timer_at = math.inf

    def timer_on(self) -> None:
        """Set the session's timer to the command timeout from now (raw socket only: over TLS
        each operation has its own deadline)."""
        if self.timeout is not None and self.sock is not None:
            self.timer.deadline = anyio.current_time() + self.timeout
            self.timer_at = time.monotonic() + self.timeout

    def queue(self, data: bytes) -> None:
        """Add bytes to write after anything pending."""
        if not self.pending:
            self.write_since = time.monotonic()
        self.pending.append(data)


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
    connection's task (write it with anyio to run on both backends). Needs anyio >= 4.10
    (``wait_readable``, ``SocketStream.from_socket``).
    """

    def _setup(self) -> None:
        self._listener: anyio.streams.stapled.MultiListener[anyio.abc.SocketStream] | None = None
        self._sockets: list[socket.socket] = []
        self._connections: dict[_Connection, None] = {}
        # anyio objects need a running event loop: they are made in start().
        self._accept_scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._closing = False
        # On asyncio, reads wait through a ReadWatch and the reply's turn of the loop is a bare
        # asyncio.sleep(0); on trio, trio's own calls; elsewhere anyio's (set in start()). Each
        # anyio call looks the backend up first, twice per command.
        self._asyncio = False
        self._checkpoint: Callable[[], Awaitable[None]] = anyio.lowlevel.checkpoint
        self._wait_readable: Callable[[socket.socket], Awaitable[None]] = anyio.wait_readable

    async def start(self) -> None:
        """Bind and listen (connections are accepted by :meth:`serve_forever`)."""
        self._stopped = anyio.Event()
        self._asyncio = running_asyncio()
        if self._asyncio:
            self._checkpoint = checkpoint
        elif (trio_lowlevel := _running_trio()) is not None:
            self._checkpoint = trio_lowlevel.checkpoint
            self._wait_readable = trio_lowlevel.wait_readable
        self._accept_scope = anyio.CancelScope()
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self._listener = listener
        # anyio binds (every address of the host name) and owns the sockets; connections are
        # accepted from the raw sockets so that they stay raw (see the module docs).
        self._sockets = [
            item.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610
            for item in listener.listeners
        ]
        for raw in self._sockets:
            raw.setblocking(False)
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
                    for raw in self._sockets:
                        acceptors.start_soon(self._accept, raw, group)
            await self._stopped.wait()

    async def _accept(self, listening: socket.socket, group: anyio.abc.TaskGroup) -> None:
        # Checked before every wait: a shutdown may close the socket before this task first
        # runs (a signal at start-up), and waiting on a closed descriptor fails (ValueError on
        # trio) before the cancellation is seen.
        while not self._closing:
            try:
                await anyio.wait_readable(listening)
            except anyio.ClosedResourceError:
                return
            for _ in range(_ACCEPT_BURST):
                try:
                    sock, _peer = listening.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    break
                except OSError as exc:  # EMFILE and friends: keep serving the others
                    if self._closing:
                        return
                    logger.warning("accept failed: %s", exc)
                    await anyio.sleep(0.1)
                    break
                try:
                    sock.setblocking(False)
                    # Every reply is one send: never hold one back waiting for an ACK (Nagle).
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:  # reset before we got to it (EINVAL on some systems)
                    sock.close()
                    continue
                group.start_soon(self._serve_connection, sock)

    async def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop listening, let every transaction in flight finish (421 to anything after it),
        then wait up to ``timeout`` seconds for the connections to end and cancel the rest."""
        self._closing = True
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        if self._listener is not None:
            for raw in self._sockets:
                anyio.notify_closing(raw)  # no acceptor may wait on a socket being closed
            await self._listener.aclose()
        for record in list(self._connections):
            await self._flush(record)
        with anyio.move_on_after(timeout):
            for record in list(self._connections):
                await record.done.wait()
        for record in list(self._connections):
            record.scope.cancel()
            await record.done.wait()
        if self._stopped is not None:
            self._stopped.set()

    async def _flush(self, record: _Connection) -> None:
        """Graceful shutdown of one connection: 421 at once when idle (else after the
        transaction in flight, written by the connection's own task)."""
        driver = record.driver
        if driver is None:
            return
        driver.start_shutdown()
        if record.handshaking:
            # The connection's task writes the 421 once TLS is up: plaintext now would land
            # inside the handshake.
            return
        data = driver.data_to_send()
        if data:
            try:
                await self._send(record, data, self.options.timeout)
            except _STREAM_ERRORS:
                record.scope.cancel()
                return
        if driver.closed:
            record.scope.cancel()

    async def _send(self, record: _Connection, data: bytes, timeout: float | None) -> None:
        """Write ``data`` after anything still pending, within ``timeout`` seconds (outside the
        connection's own task: a shutdown, the busy reply); TimeoutError when the client does
        not take it in time."""
        record.queue(data)
        if not self._send_now(record):
            await self._drain(record, timeout)

    @staticmethod
    def _send_now(record: _Connection) -> bool:
        """Write what is pending without waiting; False when some of it must wait (the socket
        buffer is full, a stream owns the socket, or another task is draining)."""
        sock, pending = record.sock, record.pending
        if sock is None or record.send_lock.locked():
            return not pending
        while pending:
            piece = pending[0]
            try:
                sent = sock.send(piece)
            except BlockingIOError:
                return False
            if sent < len(piece):
                pending[0] = piece[sent:]
                return False
            pending.popleft()
        return True

    async def _drain(self, record: _Connection, timeout: float | None) -> None:
        """Write everything pending, waiting for the client to take it (``timeout``: None
        when the connection's timer bounds the wait, which it does for the raw socket only)."""
        if timeout is None and record.sock is None:
            timeout = self.options.timeout
        with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
            async with record.send_lock:
                pending = record.pending
                while pending:
                    sock = record.sock
                    if sock is None:
                        assert record.stream is not None
                        # Taken off first: a TLS write cut short cannot be retried (the
                        # session ends with the TimeoutError or the cancellation).
                        await record.stream.send(pending.popleft())
                        continue
                    await anyio.wait_writable(sock)
                    try:
                        sent = sock.send(pending[0])
                    except BlockingIOError:
                        continue
                    if sent == len(pending[0]):
                        pending.popleft()
                    else:
                        pending[0] = pending[0][sent:]
        if scope.cancelled_caught:
            raise TimeoutError("writing to the client timed out")  # as fail_after

    @staticmethod
    async def _receive_stream(record: _Connection, timeout: float | None) -> bytes | None:
        """The next bytes from the client over TLS (``b""``: it closed or failed); None when
        ``timeout`` seconds passed first."""
        assert record.stream is not None
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        with anyio.CancelScope(deadline=deadline):
            try:
                return await record.stream.receive(_READ_SIZE)
            except _STREAM_ERRORS:
                return b""
        return None

    async def _serve_connection(self, sock: socket.socket) -> None:
        watch = ReadWatch(sock, _READ_SIZE) if self._asyncio else None
        record = _Connection(sock, watch, self.options.timeout)
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
                    await self._close(record)
                    record.done.set()

    @staticmethod
    async def _close(record: _Connection) -> None:
        if record.stream is not None:
            await anyio.aclose_forcefully(record.stream)
        if record.watch is not None:
            record.watch.close()
        if record.sock is not None:
            anyio.notify_closing(record.sock)  # the event loop forgets the descriptor first
            record.sock.close()
            record.sock = None

    async def _serve(self, record: _Connection) -> None:
        options = self.options
        ssl_object = None
        if options.implicit_tls:
            ssl_object = await self._start_tls(record)
        remote, local = self._addresses(record)
        if self._closing or self._at_capacity(len(self._connections) - 1):
            await self._send(record, busy_reply(self.hostname, remote), _BUSY_SEND_TIMEOUT)
            return
        driver = record.driver = AsyncServerDriver(
            self.handler,
            options,
            offload=anyio.to_thread.run_sync,
            peer=remote,
            local=local,
        )
        await driver.start(ssl_object)
        await self._converse(record, driver)

    async def _converse(self, record: _Connection, driver: AsyncServerDriver) -> None:
        """The session after the greeting, under one timer per connection.

        A cancel scope per read (with its timer handle) cost more than the SMTP work of a small
        command. The timer is instead one cancel scope around :meth:`_exchange`, set to the
        driver's deadline when it starts; the deadline moves later with every reply but the
        timer is left alone (it is moved only *earlier*, for the DATA total time). When it goes
        off, the deadline is checked: a read still waiting past it is a timeout (``421``), a
        write still pending past it is dropped as before (the command timeout bounds a reply's
        write too); otherwise it went off early and is set again. Everything ``_exchange``
        awaits can be interrupted and resumed that way (unsent bytes stay in ``pending``). While
        a handler call is awaited the timer is off, as no deadline bounded it before (a
        shutdown still cancels it).
        """
        clock = time.monotonic  # the driver's clock
        pending = record.pending
        timeout = self.options.timeout
        while True:
            data = driver.data_to_send()  # first: a reply restarts the command deadline
            if data:
                record.queue(data)
            if pending:
                # The command timeout bounds a reply's write (the read deadline, which may be
                # earlier in DATA, is set before the read).
                remaining = timeout if timeout is None else timeout - (clock() - record.write_since)
            elif driver.closed:
                return
            else:
                remaining = driver.read_timeout()
                if remaining is not None and remaining <= 0:
                    driver.timed_out()  # the next read would end at once
                    continue
            if remaining is None or record.sock is None:
                # (Over TLS each read and write has its own deadline instead: a cancelled
                # TLSStream operation cannot be resumed.)
                deadline = record.timer_at = math.inf
            else:
                deadline = anyio.current_time() + remaining
                record.timer_at = clock() + remaining
            with anyio.CancelScope(deadline=deadline) as timer:
                record.timer, record.reading = timer, False
                step = await self._exchange(record, driver)
            if not timer.cancelled_caught:
                if step is _Step.OVER:
                    return
                if step is _Step.HANDLER:
                    await driver.resume()
                    if record.eof:
                        return
                else:
                    await driver.tls_established(await self._start_tls(record))
                continue
            if record.reading:
                remaining = driver.read_timeout()
                if remaining is not None and remaining <= _TIMER_SLACK:
                    driver.timed_out()
            elif pending and timeout is not None and (
                clock() - record.write_since >= timeout - _TIMER_SLACK
            ):
                raise TimeoutError("writing to the client timed out")  # as fail_after
            # else: the deadline had moved on since the timer was set; set it again.

    async def _exchange(self, record: _Connection, driver: AsyncServerDriver) -> _Step:
        """Reply, read, feed the driver, until the session ends or STARTTLS needs the
        handshake (or, rarely, a handler call must run outside the timer). The hot loop, per
        command: on asyncio one checkpoint, one ``send``, one wait and one ``recv``; on trio
        one ``send``, one checkpoint and one ``recv`` (a readiness wait only when the client
        has not answered yet). Every pass awaits at least once before it reads (the checkpoint
        or the wait, both of which always yield), so a session whose client keeps sending
        cannot starve the others."""
        clock = time.monotonic
        pending = record.pending
        while True:
            watch, sock = record.watch, record.sock
            data = driver.data_to_send()
            if data:
                if watch is not None or sock is None or pending or record.send_lock.locked():
                    record.queue(data)  # behind what is pending, or after the checkpoint below
                else:
                    # Nothing before it: straight out (the socket buffer almost always takes
                    # it whole; the rest waits in ``pending``).
                    try:
                        sent = sock.send(data)
                    except BlockingIOError:
                        sent = 0
                    if sent < len(data):
                        record.queue(data[sent:])
            if pending:
                if watch is not None:
                    # On asyncio, one turn of the event loop before the reply goes out: the
                    # other connections' ready work runs first and replies leave in batches
                    # (paired runs under smtp-source: less system time per message).
                    await self._checkpoint()
                if not self._send_now(record):
                    await self._drain(record, None)
            if driver.closed:
                return _Step.OVER
            if driver.want_tls:
                return _Step.STARTTLS
            remaining = driver.read_timeout()
            if sock is None:
                over_tls = await self._receive_stream(record, remaining)
                if over_tls is None:
                    driver.timed_out()
                    continue
                chunk = over_tls
            else:
                if remaining is not None and clock() + remaining < record.timer_at - _MOVE_SLACK:
                    # An earlier deadline than the timer's (the DATA total time): move it.
                    record.timer.deadline = anyio.current_time() + remaining
                    record.timer_at = clock() + remaining
                record.reading = True
                if watch is not None:
                    chunk = await watch.receive()  # (directly: one coroutine less per read)
                else:
                    # Elsewhere (trio) the reply went out at once and one turn of the loop
                    # passes before the recv: meanwhile the client has mostly answered, so the
                    # task wakes once per command, not twice (checkpoint, readiness wait);
                    # paired runs on trio: ~15% less CPU per message. The checkpoint also
                    # keeps a client that never stops sending from starving the others.
                    await self._checkpoint()
                    while True:
                        try:
                            chunk = sock.recv(_READ_SIZE)
                            break
                        except (BlockingIOError, InterruptedError):
                            await self._wait_readable(sock)
                        except OSError:
                            chunk = b""  # reset: as if it had closed
                            break
                record.reading = False
            # Hooks the handler leaves to their defaults run inline: most commands need no
            # await (and no coroutine) here.
            if not driver.receive_nowait(chunk):
                # A handler call runs without a deadline (as it always did; a shutdown still
                # cancels it): the timer is off while it is suspended, then bounds the reply's
                # write. Most calls never suspend, and the timer cannot go off while the task
                # runs: it is switched (two deadline changes) only for calls that do.
                if record.timer.cancel_called:
                    # It went off as the bytes came (same turn of the loop): switching it off
                    # would not stop the cancellation, which would land in the handler.
                    record.eof = not chunk
                    return _Step.HANDLER
                await run_untimed(driver.resume(), record.timer_off, record.timer_on)
            if not chunk:
                return _Step.OVER

    @staticmethod
    def _addresses(record: _Connection) -> tuple[object, object]:
        """The peer's and our own socket address (None where the stack cannot tell)."""
        if record.sock is not None:
            try:
                return record.sock.getpeername(), record.sock.getsockname()
            except OSError:  # the client is already gone
                return None, None
        assert record.stream is not None
        attributes = anyio.abc.SocketAttribute
        return (
            record.stream.extra(attributes.remote_address, None),  # noqa: S610
            record.stream.extra(attributes.local_address, None),  # noqa: S610
        )

    async def _start_tls(self, record: _Connection) -> ssl.SSLObject:
        """The server side of a TLS handshake (implicit or after STARTTLS); the SSL object.

        The raw socket becomes an anyio stream first; bytes the client pipelined behind
        STARTTLS were read into the core, which drops them (RFC 3207 §4.2)."""
        options = self.options
        assert options.tls_context is not None
        record.handshaking = True
        try:
            if record.sock is not None:
                if record.watch is not None:
                    record.watch.close()  # the stream's transport registers it its own way
                    record.watch = None
                try:
                    record.stream = await anyio.abc.SocketStream.from_socket(record.sock)
                except ValueError as exc:  # anyio's word for "not connected (any more)"
                    raise ConnectionResetError("the client is gone") from exc
                record.sock = None  # the stream owns (and closes) it now
            assert record.stream is not None
            with anyio.fail_after(options.tls_handshake_timeout):
                record.stream = await TLSStream.wrap(
                    record.stream,
                    server_side=True,
                    ssl_context=options.tls_context,
                    standard_compatible=False,
                )
        finally:
            record.handshaking = False
        return record.stream.extra(TLSAttribute.ssl_object)  # noqa: S610


def _running_trio() -> types.ModuleType | None:
    """``trio.lowlevel`` when the caller runs under trio, else None (trio is imported only if
    something already did)."""
    trio = sys.modules.get("trio")
    if trio is None:
        return None
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    lowlevel: types.ModuleType = trio.lowlevel
    return lowlevel
