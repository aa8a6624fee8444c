"""Single-threaded server on non-blocking sockets and a readiness poller (``epoll``, else
:mod:`selectors`: see :mod:`._poller`); TLS is ``SSLContext.wrap_bio`` over two ``MemoryBIO``s.

The loop is written for the no-pipelining case that dominates real traffic (one command, one
reply, one round trip), where the adapter's own work per round trip is what separates it from
a C server (issue 6):

* A *turn* is one piece of work for one connection (read and answer, flush, time out, greet,
  close). The replies of a round of turns (every connection one ``poll()`` reported) are
  written right after the round, without waiting for writability (see
  :meth:`Server._settle_round`); only what a socket does not take waits for it. The poller is
  touched only when a connection's interest changes (rarely: back-pressure, closing), never
  per reply.
* The plaintext path never goes near the TLS memory BIOs (created only for TLS connections).
* No clock per turn: the driver keeps its own deadlines (it reads its clock when a reply goes
  out); the loop only needs to know when the *earliest* one may fall due. Every deadline is set
  at least the shortest configured timeout after the moment it is set, so "now + shortest
  timeout" when ``poll()`` returns is a safe bound, and the connections are only asked
  (``read_timeout()``) once that bound has passed.
* Connections get ``TCP_NODELAY``: every reply is written whole, so nothing is gained by
  holding one back for an ACK.

Turns never touch the loop's own state (the poller, the connection table): the loop settles
a connection after its turn. :mod:`transports.threads` relies on that to move a turn that
blocks in a handler to another thread (see there); here :meth:`Server._turn` just runs it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable

from .._base import BlockingServerBase, busy_reply, peer_name
from .._driver import SyncServerDriver
from ._poller import READ, READABLE, WRITABLE, WRITE, Poller

__all__ = ["Server"]

logger = logging.getLogger("transports.server")

_READ_SIZE = 65536
#: Stop reading from a client while this much output is waiting (it is not reading replies).
_MAX_OUTPUT = 1 << 20


class _Connection:
    """One client: raw socket, optional TLS object over memory BIOs, output buffer."""

    __slots__ = (
        "away", "busy", "closed", "closing", "cut", "deadline", "driver", "handshaking",
        "incoming", "mask", "outgoing", "output", "shutdown_applied", "sock", "tls",
    )

    def __init__(self, sock: socket.socket, driver: SyncServerDriver | None) -> None:
        self.sock = sock
        self.driver = driver
        self.tls: ssl.SSLObject | None = None
        self.incoming: ssl.MemoryBIO | None = None
        self.outgoing: ssl.MemoryBIO | None = None
        self.handshaking = False
        #: Bytes the socket did not take yet (written when it is writable again).
        self.output = bytearray()
        #: The TLS handshake's deadline (the driver keeps the session's own deadlines).
        self.deadline: float | None = None
        #: No more input is processed; close once the output is written.
        self.closing = False
        #: Close now, even with output pending (timed out, or the socket failed).
        self.cut = False
        self.closed = False
        self.shutdown_applied = False
        #: The connection is over the limit: only the 421 is sent (after TLS, when implicit).
        self.busy = driver is None
        #: The events the poller watches for it (0: not registered).
        self.mask = 0
        #: A turn of this connection runs on another thread (:mod:`transports.threads`).
        self.away = False


class Server(BlockingServerBase):
    """An SMTP/LMTP server on one thread (RFC 5321, RFC 3207, RFC 2033).

    ::

        server = Server(MyHandler(), port=0)
        server.start()                       # bind
        threading.Thread(target=server.serve_forever).start()
        ...
        server.shutdown()                    # from any thread; graceful
    """

    _adapter_name = "sockets"

    def _setup(self) -> None:
        super()._setup()
        self._poller = Poller()
        self._connections: dict[_Connection, None] = {}
        self._shutdown_deadline: float | None = None
        self._shutdown_requested = False
        self._listening = False
        self._loop_thread: int | None = None
        options = self.options
        timeouts = [t for t in (options.timeout, options.data_timeout) if t is not None]
        if options.tls_context is not None:
            timeouts.append(options.tls_handshake_timeout)
        #: Every deadline lies at least this far after the moment it is set.
        self._shortest_timeout = min(timeouts, default=math.inf)
        #: No deadline falls due before this moment (``time.monotonic``).
        self._next_check = math.inf
        #: Connections of the current round whose turn queued output or changed their state.
        self._unsettled: list[_Connection] = []

    def start(self) -> None:
        """Bind and listen; :meth:`serve_forever` then runs the loop."""
        self._poller.register(self._listen(), READ, None)
        self._poller.register(self._wake_reader, READ, None)
        self._listening = True

    def request_shutdown(self, timeout: float | None = 30.0) -> None:
        """Ask the loop to shut down gracefully; returns at once (safe in a signal handler)."""
        if not self._shutdown_requested:
            self._shutdown_deadline = None if timeout is None else time.monotonic() + timeout
            self._shutdown_requested = True
        self._wake()

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Graceful shutdown (see the module docs); from another thread it waits until the loop
        has finished, from the loop thread it only requests it."""
        self.request_shutdown(timeout)
        if self._loop_thread != threading.get_ident() and self._loop_thread is not None:
            self._stopped.wait()

    def serve_forever(self) -> None:
        """Run the loop in this thread until a shutdown completes."""
        if self._listener is None:
            self.start()
        self._loop_thread = threading.get_ident()
        try:
            self._run()
        finally:
            self._close_all()
            self._poller.close()
            self._close_sockets()
            self._stopped.set()

    # --- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        poller, owners, wake_reader = self._poller, self._poller.owners, self._wake_reader
        assert self._listener is not None
        listener = self._listener.fileno()
        monotonic, turn, read, write = time.monotonic, self._turn, self._read, self._write
        unsettled = self._unsettled
        self._settle_round()  # what a loop thread that was handed off left (threads)
        while True:
            if self._shutdown_requested and self._shutting_down():
                return
            timeout = None
            if self._next_check != math.inf:
                timeout = max(0.0, self._next_check - monotonic())
            ready = poller.poll(timeout)
            now = monotonic()
            if now >= self._next_check:
                self._check_deadlines(now)
            # No deadline the turns below set lies before this (and when nothing is due, this
            # makes at most one scan per shortest timeout).
            self._next_check = min(self._next_check, now + self._shortest_timeout)
            for fd, events in ready:
                connection: _Connection | None = owners.get(fd)
                if connection is None:
                    # The listener, the wake-up socket, or (harmless) a descriptor closed
                    # earlier in this round.
                    if fd == listener and self._listening:
                        self._accept()
                    else:
                        self._drain_wake(wake_reader)
                    continue
                if connection.closed:
                    continue  # closed earlier in this round (by a timeout, the shutdown...)
                if events & WRITABLE:
                    turn(connection, write)
                if events & READABLE and not connection.closing:
                    turn(connection, read)
                if connection.output or connection.closing or connection.mask != READ:
                    unsettled.append(connection)
            self._settle_round()

    def _shutting_down(self) -> bool:
        """Apply a requested shutdown; True once the loop should end."""
        self._next_check = min(self._next_check, time.monotonic() + self._shortest_timeout)
        if self._listening:
            self._listening = False
            assert self._listener is not None
            self._poller.unregister(self._listener)
            self._listener.close()
        for connection in list(self._connections):
            if not connection.shutdown_applied and not connection.away:
                connection.shutdown_applied = True
                if connection.driver is not None and not connection.closing:
                    self._turn(connection, self._apply_shutdown)
                    self._settle(connection)
        if not self._connections:
            return True
        deadline = self._shutdown_deadline
        if deadline is not None:
            if time.monotonic() >= deadline:
                return True  # the finally of serve_forever cuts the rest
            self._next_check = min(self._next_check, deadline)
        return False

    def _drain_wake(self, wake_reader: socket.socket) -> None:
        with contextlib.suppress(OSError):
            wake_reader.recv(4096)

    def _turn(self, connection: _Connection, work: Callable[[_Connection], None]) -> None:
        """Run one turn of ``connection``; a bug costs that connection, never the loop."""
        try:
            work(connection)
        except Exception:
            self._internal_error(connection)

    def _internal_error(self, connection: _Connection) -> None:
        logger.exception("connection: internal error")
        if connection.driver is not None:
            connection.driver.close_reason = "internal error"
        connection.closing = connection.cut = True

    def _check_deadlines(self, now: float) -> None:
        """Time out what is due; note when the next deadline falls."""
        nearest = math.inf
        for connection in list(self._connections):
            if connection.away or connection.closed:
                continue
            driver = connection.driver
            if connection.handshaking or driver is None:
                if connection.deadline is None:
                    continue
                left = connection.deadline - now
            else:
                remaining = driver.read_timeout()
                if remaining is None:
                    continue
                left = remaining
            if left <= 0:
                self._turn(connection, self._timed_out)
                self._settle(connection)
            else:
                nearest = min(nearest, now + left)
        if self._shutdown_requested and self._shutdown_deadline is not None:
            nearest = min(nearest, self._shutdown_deadline)
        self._next_check = nearest

    def _accept(self) -> None:
        options = self.options
        while (sock := self._accept_next()) is not None:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                # Every reply is written whole: never hold one back waiting for an ACK (a second
                # write before the client's delayed ACK would wait up to 40 ms; asyncio does this).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            driver = None
            if not self._at_capacity(len(self._connections)):
                driver = SyncServerDriver(
                    self.handler, options, peer=sock.getpeername(), local=sock.getsockname()
                )
            connection = _Connection(sock, driver)
            self._connections[connection] = None
            self._poller.register(sock, READ, connection)
            connection.mask = READ
            if options.implicit_tls:
                self._turn(connection, self._begin_implicit_tls)
            else:
                self._turn(connection, self._established)
            self._settle(connection)

    def _settle_round(self) -> None:
        """Write the replies of a round of turns, then settle those connections.

        Replies go out after the round, not from inside each turn: the first ``send()`` wakes
        the client (on loopback, often onto this very core, as the kernel expects the sender
        to sleep soon), and a wake-up per reply meant two context switches per round trip
        while the rest of the round waited. The order of each connection's bytes is unchanged.
        Idempotent, so that a loop thread taking over (threads) can run it again.
        """
        unsettled, write, settle = self._unsettled, self._write, self._settle
        for connection in unsettled:
            if connection.closed or connection.away:
                continue
            if connection.output and not connection.cut:
                write(connection)
            # Most connections are now reading again with nothing left to write: no settling.
            if connection.closing or connection.output or connection.mask != READ:
                settle(connection)
        unsettled.clear()

    def _settle(self, connection: _Connection) -> None:
        """After a turn: write what it queued, then close, or watch for what the connection
        now waits for."""
        if connection.closed or connection.away:
            return  # (an away connection is settled when it comes back)
        if connection.output and not connection.cut:
            self._write(connection)
        if connection.cut or (connection.closing and not connection.output):
            self._close(connection)
            return
        mask = READ if len(connection.output) < _MAX_OUTPUT and not connection.closing else 0
        if connection.output:
            mask |= WRITE
        if mask != connection.mask:
            if connection.mask:
                self._poller.modify(connection.sock, mask)
            else:
                self._poller.register(connection.sock, mask, connection)
            connection.mask = mask

    def _close(self, connection: _Connection) -> None:
        if connection.closed:
            return
        connection.closed = True
        self._connections.pop(connection, None)
        if connection.mask:
            connection.mask = 0
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._poller.unregister(connection.sock)
        connection.sock.close()
        if connection.driver is not None:
            self._turn(connection, self._finish)

    def _close_all(self) -> None:
        """The loop is over: cut every connection still open."""
        for connection in list(self._connections):
            self._close(connection)

    # --- turns: they touch their connection only --------------------------------------------------

    def _established(self, connection: _Connection) -> None:
        """TCP (or implicit TLS) is up: greet, or send the 421 of a connection over the limit."""
        driver = connection.driver
        if driver is None:
            self._send_app(connection, busy_reply(self.hostname, peer_name(connection.sock)))
            connection.closing = True
            return
        driver.start(connection.tls)
        self._pump(connection, driver)

    def _begin_implicit_tls(self, connection: _Connection) -> None:
        self._begin_tls(connection)
        self._flush_tls(connection)

    def _begin_tls(self, connection: _Connection) -> None:
        assert self.options.tls_context is not None
        incoming, outgoing = connection.incoming, connection.outgoing = (
            ssl.MemoryBIO(), ssl.MemoryBIO()
        )
        connection.tls = self.options.tls_context.wrap_bio(incoming, outgoing, server_side=True)
        connection.handshaking = True
        connection.deadline = time.monotonic() + self.options.tls_handshake_timeout

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if connection.tls is not None:
            self._read_tls(connection, data)
            return
        driver = connection.driver
        if driver is None:
            if not data:
                connection.closing = connection.cut = True
            return
        driver.receive(data)
        # _pump() for plaintext, inline: this is the path of nearly every round trip.
        reply = driver.data_to_send()
        if reply:
            connection.output += reply  # written after the round (see _settle_round)
        if driver.closed or not data:
            connection.closing = True
        elif driver.want_tls:
            self._begin_tls(connection)  # the 220 went out in plaintext, the rest is TLS

    def _read_tls(self, connection: _Connection, raw: bytes) -> None:
        tls, incoming = connection.tls, connection.incoming
        assert tls is not None
        assert incoming is not None
        if raw:
            incoming.write(raw)
        else:
            incoming.write_eof()
        try:
            if connection.handshaking:
                try:
                    tls.do_handshake()
                except ssl.SSLWantReadError:
                    self._flush_tls(connection)
                    return
                connection.handshaking = False
                connection.deadline = None
                self._flush_tls(connection)
                driver = connection.driver
                if driver is not None and driver.want_tls:
                    driver.tls_established(tls)
                    self._pump(connection, driver)
                else:
                    self._established(connection)
            while not connection.closing:
                try:
                    data = tls.read(_READ_SIZE)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    data = b""
                driver = connection.driver
                if driver is None:
                    if not data:
                        connection.closing = connection.cut = True
                    break
                driver.receive(data)
                self._pump(connection, driver)
                if not data:
                    connection.closing = True
        except (ssl.SSLError, OSError) as exc:
            if connection.driver is not None:
                connection.driver.close_reason = f"TLS error: {exc!r}"
            connection.closing = connection.cut = True

    def _pump(self, connection: _Connection, driver: SyncServerDriver) -> None:
        """Move the core's output to the socket; start TLS or close as the driver says."""
        data = driver.data_to_send()
        if data:
            self._send_app(connection, data)
        if driver.closed:
            connection.closing = True
        elif driver.want_tls and connection.tls is None:
            # The 220 is already queued in plaintext; everything from now on goes through TLS.
            self._begin_tls(connection)

    def _send_app(self, connection: _Connection, data: bytes) -> None:
        tls = connection.tls
        if tls is not None and not connection.handshaking:
            tls.write(data)
            self._flush_tls(connection)
        else:
            self._send(connection, data)

    def _flush_tls(self, connection: _Connection) -> None:
        assert connection.outgoing is not None
        pending = connection.outgoing.read()
        if pending:
            self._send(connection, pending)

    def _send(self, connection: _Connection, data: bytes) -> None:
        # Written when the loop settles the connection (see _settle_round), in order.
        connection.output += data

    def _write(self, connection: _Connection) -> None:
        output = connection.output
        if not output:
            return
        try:
            sent = connection.sock.send(output)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            connection.closing = connection.cut = True
            return
        del output[:sent]

    def _apply_shutdown(self, connection: _Connection) -> None:
        driver = connection.driver
        assert driver is not None
        driver.start_shutdown()
        self._pump(connection, driver)

    def _timed_out(self, connection: _Connection) -> None:
        driver = connection.driver
        if connection.handshaking or driver is None or connection.closing:
            connection.closing = connection.cut = True
            return
        driver.timed_out()
        self._pump(connection, driver)
        self._write(connection)
        # The 421 goes out if the socket takes it now; a client that is not even reading does
        # not get another timeout's worth of waiting.
        connection.closing = connection.cut = True

    def _finish(self, connection: _Connection) -> None:
        assert connection.driver is not None
        connection.driver.finish()
