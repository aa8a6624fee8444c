"""The anyio adapter: :class:`Server` on anyio, running on asyncio or on trio.

anyio is an optional dependency (``pip install esmtp-core[anyio]``, plus ``trio`` for trio) and is
imported only by this package. TLS (STARTTLS and implicit) uses ``anyio.streams.tls.TLSStream``.
"""

from ._client import Client
from ._server import Server

__all__ = ["Client", "Server"]
