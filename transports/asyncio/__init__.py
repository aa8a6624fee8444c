"""The asyncio adapter: :class:`Server` over asyncio streams.

STARTTLS uses the public ``StreamWriter.start_tls`` (Python 3.11+); implicit TLS uses the ``ssl``
argument of ``asyncio.start_server``. No private asyncio attribute is touched.
"""

from ._client import Client
from ._server import Server

__all__ = ["Client", "Server"]
