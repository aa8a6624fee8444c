"""Adapters binding the sans-I/O core (:mod:`esmtp_core`) to Python's I/O stacks, plus storage,
TLS helpers and the ``esmtp`` command line.

Adapter packages, each a thin loop around the core (imported on demand, so optional dependencies
such as anyio are only needed by the adapter that uses them):

* :mod:`transports.asyncio` — asyncio (a protocol-based server, a streams client).
* :mod:`transports.anyio` — anyio, on asyncio or trio.
* :mod:`transports.threads` — the sockets loop, plus threads for handler calls that block.
* :mod:`transports.sockets` — one thread, ``selectors`` and non-blocking sockets.

Each adapter package exposes a ``Server``; the handler interface every server runs is in
:mod:`transports.handler` and re-exported here. Each also exposes a ``Client`` (async for asyncio
and anyio, blocking for threads and sockets) whose ``send_message`` returns a :class:`SendResult`;
client errors are in :mod:`transports.errors`.
"""

from ._client_driver import SendResult
from .handler import AsyncHandler, Envelope, Handler, MessageResult, Session

__all__ = ["AsyncHandler", "Envelope", "Handler", "MessageResult", "SendResult", "Session"]
