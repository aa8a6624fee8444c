"""The asyncio adapter: a protocol-based :class:`Server` and a protocol-based :class:`Client`.

Both run STARTTLS with ``loop.start_tls`` (Python 3.10+); implicit TLS is the ``ssl`` argument of
``loop.create_server`` and ``loop.create_connection``. No private asyncio attribute is touched.
"""

from ._client import Client
from ._server import Server

__all__ = ["Client", "Server"]
