"""Thread-per-connection server: each thread is a thin loop around the shared driver.

Every connection thread waits with a selector on its socket *and* on a server-wide wake-up
socket, so that a graceful shutdown reaches an idle connection without another thread ever
writing to its (possibly TLS) socket: OpenSSL objects must not be used from two threads at once.
"""

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


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.thread: threading.Thread | None = None


class Server(BlockingServerBase):
    """An SMTP/LMTP server with one thread per connection (RFC 5321, RFC 3207, RFC 2033).

    ::

        server = Server(MyHandler(), port=0)
        server.start()            # binds and serves in background threads
        ...                       # server.address
        server.shutdown()         # graceful; thread-safe
    """

    _adapter_name = "threads"

    def _setup(self) -> None:
        super()._setup()
        self._lock = threading.Lock()
        self._connections: dict[_Connection, None] = {}
        self._acceptor: threading.Thread | None = None
        self._closing = False

    def start(self) -> None:
        """Bind, listen and start accepting in a background thread."""
        port = self._listen().getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"esmtp-accept-{port}", daemon=True
        )
        self._acceptor.start()

    def serve_forever(self) -> None:
        """Start if needed, then block until :meth:`shutdown` completes."""
        if self._listener is None:
            self.start()
        self._stopped.wait()

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop listening, let every transaction in flight finish (421 to anything after it),
        then wait up to ``timeout`` seconds for the connections and cut the rest. Thread-safe."""
        with self._lock:
            if self._closing:
                already = True
            else:
                already, self._closing = False, True
        if already:  # another thread is shutting down: wait for it
            self._stopped.wait(timeout)
            return
        # Never drained: stays readable, so every selector sees it until the end.
        self._wake()
        if self._acceptor is not None:
            self._acceptor.join()
        with self._lock:
            connections = list(self._connections)
        deadline = None if timeout is None else time.monotonic() + timeout
        for connection in connections:
            if connection.thread is not None:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                connection.thread.join(left)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                # socket.socket.shutdown, not SSLSocket.shutdown: that one drops its TLS state
                # under the feet of the thread still reading.
                socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)
            if connection.thread is not None:
                connection.thread.join()
        self._close_sockets()
        self._stopped.set()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._closing:
                for key, _ in selector.select():
                    if key.fileobj is not self._listener:
                        continue
                    sock = self._accept_next()
                    if sock is None:
                        continue
                    sock.setblocking(True)
                    connection = _Connection(sock)
                    connection.thread = threading.Thread(
                        target=self._serve, args=(connection,), daemon=True
                    )
                    with self._lock:
                        self._connections[connection] = None
                    connection.thread.start()

    def _serve(self, connection: _Connection) -> None:
        driver: SyncServerDriver | None = None
        try:
            options = self.options
            ssl_object = None
            if options.implicit_tls:
                assert options.tls_context is not None
                connection.sock.settimeout(options.tls_handshake_timeout)
                connection.sock = options.tls_context.wrap_socket(
                    connection.sock, server_side=True
                )
                ssl_object = connection.sock
            with self._lock:
                busy = self._closing or self._at_capacity(len(self._connections) - 1)
            if busy:
                connection.sock.settimeout(5)
                connection.sock.sendall(busy_reply(self.hostname, peer_name(connection.sock)))
                return
            driver = SyncServerDriver(
                self.handler,
                options,
                peer=connection.sock.getpeername(),
                local=connection.sock.getsockname(),
            )
            driver.start(ssl_object)
            self._loop(connection, driver)
        except (OSError, ssl.SSLError) as exc:
            if driver is not None:
                driver.close_reason = f"connection error: {exc!r}"
        except Exception:
            logger.exception("connection: internal error")
            if driver is not None:
                driver.close_reason = "internal error"
        finally:
            with self._lock:
                del self._connections[connection]
            try:
                if driver is not None:
                    driver.finish()
            finally:
                connection.sock.close()

    def _loop(self, connection: _Connection, driver: SyncServerDriver) -> None:
        options = self.options
        shutdown_applied = False
        with selectors.DefaultSelector() as selector:
            selector.register(connection.sock, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                data = driver.data_to_send()
                if data:
                    connection.sock.settimeout(options.timeout)
                    connection.sock.sendall(data)
                if driver.closed:
                    return
                if self._closing and not shutdown_applied:
                    shutdown_applied = True
                    selector.unregister(self._wake_reader)
                    driver.start_shutdown()
                    continue
                if driver.want_tls:
                    assert options.tls_context is not None
                    selector.unregister(connection.sock)
                    connection.sock.settimeout(options.tls_handshake_timeout)
                    connection.sock = options.tls_context.wrap_socket(
                        connection.sock, server_side=True
                    )
                    selector.register(connection.sock, selectors.EVENT_READ)
                    driver.tls_established(connection.sock)
                    continue
                sock = connection.sock
                pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
                if not pending:
                    ready = selector.select(driver.read_timeout())
                    if not ready:
                        driver.timed_out()
                        continue
                    if all(key.fileobj is not sock for key, _ in ready):
                        continue  # the wake-up socket: shutdown is applied at the loop top
                try:
                    sock.settimeout(driver.read_timeout())
                    chunk = sock.recv(_READ_SIZE)
                except TimeoutError:
                    driver.timed_out()
                    continue
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (OSError, ssl.SSLError):
                    chunk = b""
                driver.receive(chunk)
                if not chunk:
                    with contextlib.suppress(OSError):
                        sock.sendall(driver.data_to_send())
                    return
