"""asyncio server: one :class:`asyncio.Protocol` per connection around the shared driver.

Why a protocol and not streams: under a small-message load the stream machinery (a Task wake-up
per read, a StreamReader buffer, a deadline per read) cost more CPU than SMTP itself. Here bytes
arrive in ``buffer_updated`` and go straight into the driver; when every handler hook the commands
need is a default one (the driver runs those inline), the reply is written by
``transport.write`` in the same callback: no Task, no await.

Why a *buffered* protocol: a plain protocol's transport reads with ``recv(256 KiB)``, a fresh
256 KiB allocation per read; depending on the allocator's state (glibc's mmap and trim thresholds)
that costs one or two page faults per read, which doubled the server's system time per message
in some processes and not in others. Here every read lands in one preallocated buffer per server
(:data:`_READ_SIZE`) and only the bytes received are copied out.

Handler calls that must be awaited (an :class:`~transports.handler.AsyncHandler` override, or a
:class:`~transports.handler.Handler` override run in a worker thread by ``asyncio.to_thread``) run
in the connection's *worker* Task, created on first need and kept for the connection's life, so
that handler code always has a current task (``asyncio.current_task()``, ``asyncio.timeout()``
and anyio work) and one context for the whole session. While a call is in flight, bytes that
arrive are queued; reading pauses when the queue holds more than :data:`_BACKLOG_LIMIT` bytes.

Flow control and timers: when the transport's write buffer passes its high-water mark
(``pause_writing``: the client does not read its replies) no more input is processed until it
drains; if it does not drain within the command timeout the connection is cut. One
:class:`~transports.asyncio._deadline.MovingDeadline` per connection carries the command and
DATA timeouts (``421 4.4.2``) and that drain limit. STARTTLS (RFC 3207) uses ``loop.start_tls``
on the same protocol: reading pauses before the ``220`` goes out and queued plaintext is dropped
(§4.2); implicit TLS is ``create_server(ssl=...)``. Only public asyncio API is used.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl

from .._base import ServerBase, busy_reply
from .._driver import AsyncServerDriver
from ..handler import AsyncHandler, Handler
from ._deadline import MovingDeadline

__all__ = ["Server"]

logger = logging.getLogger("transports.server")

#: Bytes queued while a handler call is in flight (or replies do not drain) before reading
#: pauses: the same bound the former stream reader had (twice its 64 KiB read size).
#: Bytes per read (the size of the server's one read buffer).
_READ_SIZE = 65536
_BACKLOG_LIMIT = 2 * _READ_SIZE
#: Seconds a closed connection may take to flush its last replies before it is cut.
_CLOSE_GRACE = 5.0

# What the worker task does next.
_GREET = "greet"  # finish the connect hook
_RESUME = "resume"  # finish a handler call and what follows it
_TLS = "tls"  # STARTTLS handshake
_FINISH = "finish"  # the disconnect hook (and any message_aborted) of a finished session


class Server(ServerBase[Handler | AsyncHandler]):
    """An SMTP/LMTP server on asyncio (RFC 5321, RFC 3207, RFC 2033).

    ::

        server = Server(MyHandler(), port=0)
        await server.start()
        ...  # server.address
        await server.shutdown()

    A synchronous :class:`~transports.handler.Handler` runs in worker threads
    (``asyncio.to_thread``); an :class:`~transports.handler.AsyncHandler` runs on the loop.
    Hooks the handler does not override are not called at all: their documented defaults are
    applied directly (see :class:`~transports._driver.AsyncServerDriver`).
    """

    def _setup(self) -> None:
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._stopped: asyncio.Event | None = None
        self._closing = False
        # Every connection reads into this one buffer and copies the bytes out at once (see the
        # module docs); callbacks never interleave on one loop, so it is never shared in use.
        self._read_buffer = memoryview(bytearray(_READ_SIZE))

    async def start(self) -> None:
        """Bind and listen; connections are served from now on."""
        options = self.options
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await loop.create_server(
            lambda: _Connection(self, loop),
            self.host,
            self.port,
            ssl=options.tls_context if options.implicit_tls else None,
            ssl_handshake_timeout=options.tls_handshake_timeout if options.implicit_tls else None,
        )
        sockname = self._server.sockets[0].getsockname()
        self._address = (sockname[0], sockname[1])
        logger.info("listening on %s:%d (asyncio)", *self._address)

    async def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` completes (starting first if needed)."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        await self._stopped.wait()

    async def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop listening, let every transaction in flight finish (421 to anything after it),
        then wait up to ``timeout`` seconds for the connections to end and cut the rest."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.start_shutdown()
        waiting = {connection.done: connection for connection in self._connections}
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=timeout)
            # Out of patience: cut the connections (they then end on their own), and cancel
            # only a worker stuck in its handler.
            for future in pending:
                waiting[future].abort()
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=1)
                for future in stuck:
                    waiting[future].cancel()
                if stuck:
                    await asyncio.wait(stuck)
        if self._server is not None:
            await self._server.wait_closed()
        if self._stopped is not None:
            self._stopped.set()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()


class _Connection(asyncio.BufferedProtocol):
    """One client connection (see the module docs for the design).

    Invariants: ``_busy`` is True while the worker owns the driver (a handler call, the TLS
    handshake or the final notices are in flight) and once the session is finished; then
    callbacks only queue input. Otherwise :meth:`_proceed` runs the driver synchronously until
    it needs input, the worker, or the end.
    """

    # Set by connection_made, before anything else runs (no driver for a refused connection,
    # which is _finished from the start).
    _transport: asyncio.Transport
    _driver: AsyncServerDriver

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._read_buffer = server._read_buffer
        #: Set once the session is over and the transport is gone (or given up on).
        self.done: asyncio.Future[None] = loop.create_future()
        self._backlog: collections.deque[bytes] = collections.deque()  # b"": end of input
        self._backlog_size = 0
        self._busy = False
        self._job = _RESUME
        self._worker: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._reading = True
        self._write_paused = False
        self._tls = False
        self._eof_queued = False  # end of input queued (EOF or connection lost)
        self._eof_fed = False  # ... and given to the driver
        self._ending = False  # finishing (final notices) has begun
        self._finished = False  # final notices done, transport closed or closing
        self._lost = False  # connection_lost() was called
        self._timer = MovingDeadline(loop, self._expire)
        self._closer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Accept (or refuse with ``421``: limit reached or shutting down) and greet."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        server = self._server
        if server._closing or server._at_capacity(len(server._connections)):
            self._busy = self._ending = self._finished = True  # nothing is served
            transport.write(busy_reply(server.hostname, transport.get_extra_info("peername")))
            transport.close()
            self.done.set_result(None)
            return
        ssl_object = transport.get_extra_info("ssl_object")
        self._tls = ssl_object is not None
        driver = self._driver = AsyncServerDriver(
            server.handler,
            server.options,
            offload=asyncio.to_thread,
            peer=_address(transport.get_extra_info("peername")),
            local=_address(transport.get_extra_info("sockname")),
        )
        server._connections.add(self)
        try:
            greeted = driver.start_nowait(ssl_object)
        except Exception:
            self._internal_error()
            return
        if greeted:
            self._proceed()
        else:
            self._hand_off(_GREET)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the transport reads to: the server's read buffer."""
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` arrived in the read buffer."""
        self.data_received(bytes(self._read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """Handle the bytes now, or queue them while the worker owns the driver (or replies
        wait to drain, or earlier bytes are still queued)."""
        if not (self._busy or self._write_paused or self._backlog):
            # The common case, without the queue. (Reading is paused before a 220 to STARTTLS
            # and the TLS job is _busy, so no plaintext gets here while want_tls is set.)
            try:
                done = self._driver.receive_nowait(data)
            except Exception:
                self._internal_error()
                return
            if done:
                self._proceed()
            else:
                self._hand_off(_RESUME)
            return
        self._backlog.append(data)
        self._backlog_size += len(data)
        if not self._busy:
            self._proceed()
        if self._backlog_size > _BACKLOG_LIMIT and self._reading and not self._lost:
            self._reading = False
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        """The client shut down its side; keep ours open for the last replies (not possible
        over TLS, where the TLS layer closes)."""
        self._queue_eof()
        return None if self._tls else True

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone: what was queued is handled, then the session ends."""
        self._lost = True
        self._write_paused = False
        if self._finished:
            self._done()
            return
        self._timer.cancel()
        self._queue_eof()

    def pause_writing(self) -> None:
        """The client does not read its replies: stop handling input until they drain, for at
        most the command timeout."""
        self._write_paused = True
        timeout = self._server.options.timeout
        if timeout is not None and not self._ending:
            self._timer.set(self._loop.time() + timeout)

    def resume_writing(self) -> None:
        """The replies drained: carry on with queued input."""
        self._write_paused = False
        if not self._busy:
            self._proceed()

    # --- for Server.shutdown ------------------------------------------------------------------

    def start_shutdown(self) -> None:
        """Graceful shutdown: the transaction in flight finishes, then ``421``."""
        if self._ending:
            return
        self._driver.start_shutdown()
        if not self._busy:
            self._proceed()

    def abort(self) -> None:
        """Cut the connection now (the session then ends as if the client had vanished)."""
        if not self._lost:
            self._transport.abort()

    def cancel(self) -> None:
        """Cancel the worker stuck in a handler call; it still runs the final notices. (With
        no worker left to cancel, the connection is simply given up on.)"""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        else:  # pragma: no cover - only a worker can be stuck past an abort
            self._done()

    # --- the synchronous path ----------------------------------------------------------------

    def _proceed(self) -> None:
        """Flush replies, then feed queued input to the driver, until it needs more input, a
        handler call must be awaited, TLS starts, or the session ends. Not while ``_busy``."""
        driver = self._driver
        backlog = self._backlog
        try:
            while True:
                if driver.want_tls and self._reading:
                    # Before the 220 goes out: the client's TLS handshake must not reach the
                    # plaintext side (RFC 3207 §4.2).
                    self._reading = False
                    self._transport.pause_reading()
                data = driver.data_to_send()
                if data and not self._lost:
                    self._transport.write(data)
                if driver.closed or self._eof_fed:
                    self._end()
                    return
                if driver.want_tls:
                    # Plaintext pipelined behind STARTTLS is dropped, never read as if it had
                    # come over TLS (RFC 3207 §4.2); the core dropped what it had buffered.
                    backlog.clear()
                    self._backlog_size = 0
                    self._hand_off(_TLS)
                    return
                if self._write_paused:
                    return
                if not backlog:
                    timeout = driver.read_timeout()
                    self._timer.set(None if timeout is None else self._loop.time() + timeout)
                    if not self._reading and not self._lost:
                        self._reading = True
                        self._transport.resume_reading()
                    return
                chunk = backlog.popleft()
                self._backlog_size -= len(chunk)
                if not chunk:
                    self._eof_fed = True
                if not driver.receive_nowait(chunk):
                    self._hand_off(_RESUME)
                    return
        except Exception:
            self._internal_error()

    def _queue_eof(self) -> None:
        if self._eof_queued or self._ending:
            return
        self._eof_queued = True
        self._backlog.append(b"")
        if not self._busy:
            self._proceed()

    def _expire(self) -> None:
        """The timer fired: the replies did not drain in time, or no command came in time."""
        if self._ending or self._lost:
            return
        driver = self._driver
        if self._write_paused:
            driver.close_reason = "connection error: replies not read in time"
            self._backlog.clear()
            self.abort()
            if not self._busy:
                self._end()
            return
        if self._busy:
            return  # no timeout while a handler call runs; set again when it is done
        driver.timed_out()
        self._proceed()

    def _end(self) -> None:
        """The session is over: run the final notices (maybe in the worker), then close."""
        if self._ending:
            return
        self._ending = True
        self._timer.cancel()
        self._backlog.clear()
        driver = self._driver
        try:
            finished = driver.finish_nowait()
        except Exception:
            logger.exception("connection %d: internal error", driver.session.id)
            finished = True
        if finished:
            self._close()
        else:
            self._hand_off(_FINISH)

    def _close(self) -> None:
        self._finished = self._busy = True  # from now on input is ignored
        if self._lost:
            self._done()
            return
        self._transport.close()
        # The last replies get a while to drain (a client that never reads them is cut).
        self._closer = self._loop.call_later(_CLOSE_GRACE, self._give_up)

    def _give_up(self) -> None:
        self.abort()
        self._done()

    def _done(self) -> None:
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        self._server._connections.discard(self)
        if not self.done.done():
            self.done.set_result(None)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            self._wakeup = None
            wakeup.set_result(None)  # an idle worker ends

    def _internal_error(self) -> None:
        # A bug must cost one connection, never the server.
        driver = self._driver
        logger.exception("connection %d: internal error", driver.session.id)
        driver.close_reason = "internal error"
        if self._ending:
            if not self._finished:
                self._close()
            return
        self._end()

    # --- the worker task ---------------------------------------------------------------------

    def _hand_off(self, job: str) -> None:
        """Give the driver to the worker for ``job`` (called only while not ``_busy``)."""
        self._busy = True
        self._job = job
        if self._worker is None:
            self._worker = self._loop.create_task(self._work())
        elif self._wakeup is not None:
            wakeup, self._wakeup = self._wakeup, None
            wakeup.set_result(None)
        # else: the worker itself is handing off; it loops on.

    async def _work(self) -> None:
        driver = self._driver
        while True:
            job = self._job
            try:
                if job is _TLS:
                    await self._start_tls()
                else:
                    await driver.resume()
                    if job is _GREET:
                        driver.after_start()
            except asyncio.CancelledError:
                await self._cancelled()
                return
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
                driver.close_reason = f"connection error: {exc!r}"
                self._busy = False
                self.abort()
                self._end()
            except Exception:
                self._busy = False
                self._internal_error()
            else:
                self._busy = False
                if job is _FINISH:
                    self._close()
                else:
                    self._proceed()
            if self._finished:
                return
            if self._busy:
                continue  # handed off again
            wakeup = self._wakeup = self._loop.create_future()
            try:
                await wakeup
            except asyncio.CancelledError:
                await self._cancelled()
                return
            if self._finished:
                return

    async def _cancelled(self) -> None:
        """Shutdown gave up on a handler call: cut the connection, still run the final
        notices (as the task-per-connection server did), and end."""
        driver = self._driver
        self._busy = True  # callbacks only queue from now on
        self.abort()
        self._timer.cancel()
        if not self._finished:
            if not self._ending:
                self._ending = True
                try:
                    await driver.finish()
                except Exception:
                    logger.exception("connection %d: internal error", driver.session.id)
            self._finished = True
        self._done()

    async def _start_tls(self) -> None:
        """STARTTLS (RFC 3207): the handshake on this connection, then a fresh session."""
        options = self._server.options
        driver = self._driver
        assert options.tls_context is not None
        self._backlog.clear()
        self._backlog_size = 0
        transport = await self._loop.start_tls(
            self._transport,
            self,
            options.tls_context,
            server_side=True,
            ssl_handshake_timeout=options.tls_handshake_timeout,
        )
        if transport is None:  # pragma: no cover - only when the loop lost the connection
            raise ConnectionResetError("connection lost during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._reading = True
        self._tls = True
        if not driver.tls_established_nowait(transport.get_extra_info("ssl_object")):
            await driver.resume()


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    return None
