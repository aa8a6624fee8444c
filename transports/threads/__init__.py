"""The thread adapter: :class:`Server` with one thread per connection over blocking sockets.

TLS uses ``SSLContext.wrap_socket`` (STARTTLS on the live socket, or implicit TLS right after
``accept``). The handler is a plain :class:`~transports.handler.Handler`.
"""

from ._client import Client, Outgoing, send_messages
from ._server import Server

__all__ = ["Client", "Outgoing", "Server", "send_messages"]
