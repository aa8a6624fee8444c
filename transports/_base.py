"""What every adapter's ``Server`` shares: options (TLS, timeouts, limits), the constructor, the
bound address and the reply for connections beyond the limit."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from esmtp_core import ChannelBinding, Reply, ServerConfig

from .handler import AsyncHandler, Handler

__all__ = ["BlockingServerBase", "ServerBase", "ServerOptions", "busy_reply", "peer_name"]

logger = logging.getLogger("transports.server")


def busy_reply(hostname: str, peer: object = None) -> bytes:
    """The greeting for a connection beyond the limit (or arriving during shutdown):
    ``421 4.7.0``, then the server closes (RFC 5321 §3.1 allows 421 instead of 220). Logged."""
    logger.warning("refused connection from %s: too many connections or shutting down", peer)
    return Reply.make(421, "4.7.0", f"{hostname} Too many connections, try again later").to_bytes()


def peer_name(sock: socket.socket) -> object:
    """The peer's address for a log line, or None once the peer is gone."""
    try:
        return sock.getpeername()
    except OSError:
        return None


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """Everything an adapter needs besides the handler and the listening address.

    Creating one makes the core configuration agree with the TLS setup (STARTTLS offered when a
    context is given, ``tls_on_connect`` for implicit TLS).
    """

    config: ServerConfig = dataclasses.field(default_factory=ServerConfig)
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    #: ``tls-server-end-point`` data for SCRAM-*-PLUS
    #: (see :func:`transports.tls.server_end_point_binding`).
    channel_binding: ChannelBinding | None = None
    #: Seconds a client may stay silent (idle or mid-command) before ``421 4.4.2``; None: forever.
    timeout: float | None = 300.0
    #: Seconds one message body may take from its first byte to its end; None: no limit.
    data_timeout: float | None = 600.0
    #: Seconds for a TLS handshake.
    tls_handshake_timeout: float = 30.0
    #: Simultaneous connections; beyond, ``421 4.7.0`` and close. None: no limit.
    max_connections: int | None = 100

    def __post_init__(self) -> None:
        """Validate, and make the core configuration agree with the TLS setup (``ValueError``
        for contradictions)."""
        if self.implicit_tls and self.tls_context is None:
            raise ValueError("implicit TLS needs a tls_context")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be positive")
        for name in ("timeout", "data_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        config = dataclasses.replace(
            self.config,
            starttls=self.tls_context is not None and not self.implicit_tls,
            tls_on_connect=self.implicit_tls,
        )
        object.__setattr__(self, "config", config)  # frozen: completed once, while created


H = TypeVar("H", bound=Handler | AsyncHandler)


class ServerBase(Generic[H]):
    """Common constructor of the adapters' servers.

    Every adapter's ``Server`` has the same life cycle: ``start()`` binds (and listens),
    ``serve_forever()`` serves until a shutdown completes, ``shutdown(timeout=30.0)`` stops
    listening, lets each transaction in flight finish (then ``421``), waits up to ``timeout``
    seconds and cuts what is left; :attr:`address` is the bound ``(host, port)``. The methods are
    coroutines on :mod:`transports.asyncio` and :mod:`transports.anyio` and blocking calls on
    :mod:`transports.threads` (where ``start()`` already serves in background threads) and
    :mod:`transports.sockets` (where ``serve_forever()`` runs the loop in the calling thread and
    ``shutdown()`` may be called from any thread; ``request_shutdown()`` from a signal handler).

    ``port=0`` picks a free port; read :attr:`address` after ``start()``. With ``tls_context``
    the server offers STARTTLS (RFC 3207), or speaks TLS from the first byte with
    ``implicit_tls=True`` (RFC 8314). ``config.lmtp`` turns the server into an LMTP server
    (RFC 2033). See :class:`~transports._driver.ServerOptions` for timeouts and limits.
    """

    def __init__(
        self,
        handler: H,
        *,
        host: str = "127.0.0.1",
        port: int = 8025,
        config: ServerConfig | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        channel_binding: ChannelBinding | None = None,
        timeout: float | None = 300.0,
        data_timeout: float | None = 600.0,
        tls_handshake_timeout: float = 30.0,
        max_connections: int | None = 100,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.options = ServerOptions(
            config=config or ServerConfig(),
            tls_context=tls_context,
            implicit_tls=implicit_tls,
            channel_binding=channel_binding,
            timeout=timeout,
            data_timeout=data_timeout,
            tls_handshake_timeout=tls_handshake_timeout,
            max_connections=max_connections,
        )
        self._address: tuple[str, int] | None = None
        self._setup()

    def _setup(self) -> None:
        """Adapter-specific state (overridden by each adapter instead of ``__init__``)."""

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` the server listens on (after ``start()``)."""
        if self._address is None:
            raise RuntimeError("the server is not started")
        return self._address

    @property
    def hostname(self) -> str:
        """The name in the greeting (``ServerConfig.hostname``)."""
        return self.options.config.hostname

    def _bind(self) -> socket.socket:
        """A listening socket for the blocking adapters (IPv6 when the host is an IPv6 literal
        or resolves only to IPv6)."""
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family = socket.AF_INET if any(i[0] == socket.AF_INET for i in infos) else infos[0][0]
        return socket.create_server(
            (self.host, self.port), family=family, backlog=128, reuse_port=False
        )

    def _at_capacity(self, active: int) -> bool:
        limit = self.options.max_connections
        return limit is not None and active >= limit


class BlockingServerBase(ServerBase[Handler]):
    """What the blocking adapters (:mod:`transports.threads`, :mod:`transports.sockets`) share:
    a synchronous handler, a non-blocking listening socket, and a wake-up socket pair that lets
    another thread (or a signal handler) interrupt the ``select()`` waiting on it."""

    #: The adapter's name in the "listening" log line.
    _adapter_name = "blocking"

    def _setup(self) -> None:
        if isinstance(self.handler, AsyncHandler):
            raise TypeError(
                "this adapter runs a synchronous Handler; use transports.asyncio or "
                "transports.anyio for an AsyncHandler"
            )
        self._listener: socket.socket | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        #: Set when the server has stopped (``serve_forever`` returns, ``shutdown`` waits).
        self._stopped = threading.Event()

    def _listen(self) -> socket.socket:
        """Bind and listen (non-blocking), record :attr:`address` and log it."""
        listener = self._listener = self._bind()
        listener.setblocking(False)
        sockname = listener.getsockname()
        self._address = (sockname[0], sockname[1])
        logger.info("listening on %s:%d (%s)", *self._address, self._adapter_name)
        return listener

    def _accept_next(self) -> socket.socket | None:
        """The next pending connection, or None: none is pending, or accepting failed (EMFILE
        and friends are logged; the server keeps serving the connections it has)."""
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            logger.warning("accept failed: %s", exc)
            return None
        return sock

    def _wake(self) -> None:
        """Make the wake-up socket readable (safe in a signal handler; never blocks)."""
        with contextlib.suppress(OSError):  # full or closed: it is readable already, or moot
            self._wake_writer.send(b"x")

    def _close_sockets(self) -> None:
        """Close the listener and the wake-up pair, once the server has stopped."""
        if self._listener is not None:
            self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()
