"""The thread adapter: :class:`Server` runs the :mod:`transports.sockets` event loop and hands a
turn that blocks in the synchronous handler to a thread of its own, so a slow handler does not
stall the other sessions. TLS runs over ``ssl.MemoryBIO``. The handler is a plain
:class:`~transports.handler.Handler`.
"""

from ._client import Client, Outgoing, send_messages
from ._server import Server

__all__ = ["Client", "Outgoing", "Server", "send_messages"]
