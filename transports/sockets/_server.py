"""Single-threaded ``selectors`` server; TLS is ``SSLContext.wrap_bio`` over two ``MemoryBIO``s."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time

from .._base import BlockingServerBase, busy_reply, peer_name
from .._driver import SyncServerDriver

__all__ = ["Server"]

logger = logging.getLogger("transports.server")

_READ_SIZE = 65536
#: Stop reading from a client while this much output is waiting (it is not reading replies).
_MAX_OUTPUT = 1 << 20


class _Connection:
    """One client: raw socket, optional TLS object over memory BIOs, output buffer, deadline."""

    def __init__(self, sock: socket.socket, driver: SyncServerDriver | None) -> None:
        self.sock = sock
        self.driver = driver
        self.tls: ssl.SSLObject | None = None
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.handshaking = False
        self.output = bytearray()
        self.deadline: float | None = None
        #: No more input is processed; close once the output is written.
        self.closing = False
        self.shutdown_applied = False
        #: The connection is over the limit: only the 421 is sent (after TLS, when implicit).
        self.busy = driver is None
        self.mask = 0


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
        self._selector = selectors.DefaultSelector()
        self._connections: dict[_Connection, None] = {}
        self._shutdown_deadline: float | None = None
        self._shutdown_requested = False
        self._loop_thread: int | None = None

    def start(self) -> None:
        """Bind and listen; :meth:`serve_forever` then runs the loop."""
        self._selector.register(self._listen(), selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)

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
            for connection in list(self._connections):
                self._close(connection)
            self._selector.close()
            self._close_sockets()
            self._stopped.set()

    # --- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        listening = True
        while True:
            if self._shutdown_requested:
                if listening:
                    listening = False
                    assert self._listener is not None
                    self._selector.unregister(self._listener)
                    self._listener.close()
                for open_connection in list(self._connections):
                    driver = open_connection.driver
                    if not open_connection.shutdown_applied and driver is not None:
                        open_connection.shutdown_applied = True
                        driver.start_shutdown()
                        self._pump(open_connection)
                if not self._connections:
                    return
                deadline = self._shutdown_deadline
                if deadline is not None and time.monotonic() >= deadline:
                    return  # the finally of serve_forever cuts the rest
            for key, mask in self._selector.select(self._next_timeout()):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is self._wake_reader:
                    with contextlib.suppress(OSError):
                        self._wake_reader.recv(4096)
                else:
                    connection: _Connection = key.data
                    try:
                        if mask & selectors.EVENT_WRITE:
                            self._write(connection)
                        if mask & selectors.EVENT_READ and connection in self._connections:
                            self._read(connection)
                    except Exception:
                        self._internal_error(connection)
            now = time.monotonic()
            for connection in list(self._connections):
                if connection.deadline is not None and now >= connection.deadline:
                    try:
                        self._timed_out(connection)
                    except Exception:
                        self._internal_error(connection)

    def _internal_error(self, connection: _Connection) -> None:
        # A bug must cost one connection, never the single thread serving all of them.
        logger.exception("connection: internal error")
        if connection.driver is not None:
            connection.driver.close_reason = "internal error"
        self._close(connection)

    def _next_timeout(self) -> float | None:
        deadlines = [c.deadline for c in self._connections if c.deadline is not None]
        if self._shutdown_deadline is not None:
            deadlines.append(self._shutdown_deadline)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _accept(self) -> None:
        while (sock := self._accept_next()) is not None:
            sock.setblocking(False)
            options = self.options
            driver = None
            if not self._at_capacity(len(self._connections)):
                driver = SyncServerDriver(
                    self.handler,
                    options,
                    peer=sock.getpeername(),
                    local=sock.getsockname(),
                )
            connection = _Connection(sock, driver)
            self._connections[connection] = None
            self._selector.register(sock, selectors.EVENT_READ, connection)
            connection.mask = selectors.EVENT_READ
            if options.implicit_tls:
                self._begin_tls(connection)
                self._flush_tls(connection)
                self._update(connection)
            else:
                self._established(connection)

    def _established(self, connection: _Connection) -> None:
        """TCP (or implicit TLS) is up: greet, or send the 421 of a connection over the limit."""
        if connection.driver is None:
            self._send_app(connection, busy_reply(self.hostname, peer_name(connection.sock)))
            connection.closing = True
            self._update(connection)
            return
        connection.driver.start(connection.tls)
        self._pump(connection)

    def _begin_tls(self, connection: _Connection) -> None:
        assert self.options.tls_context is not None
        connection.tls = self.options.tls_context.wrap_bio(
            connection.incoming, connection.outgoing, server_side=True
        )
        connection.handshaking = True
        connection.deadline = time.monotonic() + self.options.tls_handshake_timeout

    def _read(self, connection: _Connection) -> None:
        try:
            raw = connection.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            raw = b""
        if connection.tls is None:
            self._receive(connection, raw)
            return
        if raw:
            connection.incoming.write(raw)
        else:
            connection.incoming.write_eof()
        try:
            if connection.handshaking:
                try:
                    connection.tls.do_handshake()
                except ssl.SSLWantReadError:
                    self._flush_tls(connection)
                    self._update(connection)
                    return
                connection.handshaking = False
                self._flush_tls(connection)
                driver = connection.driver
                if driver is not None and driver.want_tls:
                    driver.tls_established(connection.tls)
                    self._pump(connection)
                else:
                    self._established(connection)
            while not connection.closing:
                try:
                    data = connection.tls.read(_READ_SIZE)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    data = b""
                self._receive(connection, data)
                if not data:
                    break
        except (ssl.SSLError, OSError) as exc:
            if connection.driver is not None:
                connection.driver.close_reason = f"TLS error: {exc!r}"
            self._close(connection)

    def _receive(self, connection: _Connection, data: bytes) -> None:
        driver = connection.driver
        if driver is None or connection.closing:
            if not data:
                self._close(connection)
            return
        driver.receive(data)
        self._pump(connection)
        if not data and connection in self._connections:
            connection.closing = True
            self._update(connection)

    def _pump(self, connection: _Connection) -> None:
        """Move the core's output to the socket; start TLS or close as the driver says."""
        driver = connection.driver
        assert driver is not None
        self._send_app(connection, driver.data_to_send())
        if driver.closed:
            connection.closing = True
        elif driver.want_tls and connection.tls is None:
            # The 220 is already queued in plaintext; everything from now on goes through TLS.
            self._begin_tls(connection)
        elif not connection.handshaking:
            timeout = driver.read_timeout()
            connection.deadline = None if timeout is None else time.monotonic() + timeout
        self._update(connection)

    def _send_app(self, connection: _Connection, data: bytes) -> None:
        if not data:
            return
        if connection.tls is not None and not connection.handshaking:
            connection.tls.write(data)
            self._flush_tls(connection)
        else:
            connection.output += data
        self._write(connection)

    def _flush_tls(self, connection: _Connection) -> None:
        pending = connection.outgoing.read()
        if pending:
            connection.output += pending
            self._write(connection)

    def _write(self, connection: _Connection) -> None:
        if connection.output:
            try:
                sent = connection.sock.send(connection.output)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(connection)
                return
            del connection.output[:sent]
        if connection.closing and not connection.output:
            self._close(connection)
        else:
            self._update(connection)

    def _update(self, connection: _Connection) -> None:
        if connection not in self._connections:
            return
        mask = 0
        if len(connection.output) < _MAX_OUTPUT and not connection.closing:
            mask |= selectors.EVENT_READ
        if connection.output:
            mask |= selectors.EVENT_WRITE
        if connection.closing and not connection.output:
            self._close(connection)
            return
        if mask != connection.mask:
            connection.mask = mask
            if mask:
                self._selector.modify(connection.sock, mask, connection)
            else:  # pragma: no cover - a connection always reads or writes until closed
                self._selector.unregister(connection.sock)

    def _timed_out(self, connection: _Connection) -> None:
        driver = connection.driver
        if connection.handshaking or driver is None or connection.closing:
            self._close(connection)
            return
        driver.timed_out()
        self._pump(connection)

    def _close(self, connection: _Connection) -> None:
        if connection not in self._connections:
            return
        del self._connections[connection]
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()
        if connection.driver is not None:
            connection.driver.finish()
