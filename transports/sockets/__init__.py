"""The plain-socket adapter: a single-threaded :class:`Server` on ``selectors`` and non-blocking
sockets, with TLS through ``ssl.MemoryBIO`` — proof that the core needs no framework.

Handler methods run on the one server thread, so a slow handler delays every connection; use
:mod:`transports.threads` or an async adapter for handlers that block.
"""

from ._client import Client
from ._server import Server

__all__ = ["Client", "Server"]
