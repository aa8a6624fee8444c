"""What every adapter's ``Server`` shares: constructor arguments, options and the bound address."""

from __future__ import annotations

import ssl
from typing import Generic, TypeVar

from esmtp_core import ChannelBinding, ServerConfig

from ._driver import ServerOptions
from .handler import AsyncHandler, Handler

__all__ = ["ServerBase"]

H = TypeVar("H", bound=Handler | AsyncHandler)


class ServerBase(Generic[H]):
    """Common constructor of the adapters' servers.

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
        self.options = ServerOptions.build(
            config=config,
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

    def _at_capacity(self, active: int) -> bool:
        limit = self.options.max_connections
        return limit is not None and active >= limit
