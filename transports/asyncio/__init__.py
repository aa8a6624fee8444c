"""The asyncio adapter: a protocol-based :class:`Server` and a streams :class:`Client`.

The server runs STARTTLS with ``loop.start_tls`` on its protocol; the client with the public
``StreamWriter.start_tls`` (Python 3.11+). Implicit TLS is the ``ssl`` argument of
``loop.create_server`` and ``asyncio.open_connection``. No private asyncio attribute is touched.
"""

from ._client import Client
from ._server import Server

__all__ = ["Client", "Server"]
