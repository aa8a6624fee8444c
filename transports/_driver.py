"""The server drivers: what every server adapter runs, one per connection.

An adapter owns the socket, TLS, clocks and concurrency; it loops "read bytes -> driver ->
write bytes". The mapping from core events to handler calls lives in :mod:`transports._mapping`
(one generator, with the decisions the RFCs leave to the server written down there):
:class:`SyncServerDriver` runs its handler calls directly, :class:`AsyncServerDriver` awaits them
(or runs a synchronous handler in a worker thread through the adapter's ``offload``).

A hook the handler does not override (looked up unchanged on :class:`Handler` or
:class:`AsyncHandler`) is not called: its documented default is applied inline, so it costs no
coroutine, no worker thread and no await. The observable result is the same.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Awaitable, Callable

from ._base import ServerOptions
from ._hooks import inline_hooks as _inline_hooks
from ._mapping import MappingBase, Steps, _Call, _Failed
from .handler import AsyncHandler, Handler

__all__ = ["AsyncServerDriver", "SyncServerDriver"]


class SyncServerDriver(MappingBase):
    """Driver for blocking adapters: handler methods are called directly."""

    def __init__(
        self,
        handler: Handler,
        options: ServerOptions,
        *,
        peer: object = None,
        local: object = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(options, peer=peer, local=local, clock=clock)
        self.handler = handler
        self._inline = _inline_hooks(handler)

    def _run(self, steps: Steps) -> None:
        call = self._advance(steps, None)
        while call is not None:
            result: object
            try:
                method = getattr(self.handler, call.method)
                result = (
                    method(*call.args) if call.kwargs is None
                    else method(*call.args, **call.kwargs)
                )
            except Exception as exc:
                result = _Failed(call.method, exc)
            call = self._advance(steps, result)

    def start(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None = None) -> None:
        """Run the connect hook and queue the greeting. Pass the TLS object for implicit TLS."""
        if ssl_object is not None:
            self._tls_up(ssl_object)
        self._run(self._greet())
        self._implicit_binding()

    def receive(self, data: bytes) -> None:
        """Feed bytes from the client (``b""``: it closed) and handle every complete event."""
        if self.conn.closed:
            return
        self.conn.receive_data(data)
        self._run(self._events())

    def tls_established(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
        """The STARTTLS handshake succeeded: tell the core and carry on."""
        self._tls_up(ssl_object)
        self.conn.tls_started(self.options.channel_binding)
        self._run(self._events())

    def finish(self) -> None:
        """The connection is gone: abandon any message, run the disconnect hook, log. Idempotent."""
        self._run(self._finish())


class AsyncServerDriver(MappingBase):
    """Driver for async adapters: awaits :class:`AsyncHandler` methods; a synchronous
    :class:`Handler` runs through ``offload`` (e.g. ``asyncio.to_thread``) so that blocking hooks
    do not stall the event loop.

    Hooks the handler does not override are run inline (their defaults are known and do not
    block), so the common commands need no await at all. An adapter that wants to use that
    (:mod:`transports.asyncio` does) calls the ``*_nowait`` methods: each returns True when it is
    done, or False when a handler call must be awaited, in which case the adapter awaits
    :meth:`resume` (in the connection's task) before anything else. The coroutine methods
    (:meth:`start`, :meth:`receive`, ...) do both in one go.
    """

    def __init__(
        self,
        handler: Handler | AsyncHandler,
        options: ServerOptions,
        *,
        offload: Callable[[Callable[[], object]], Awaitable[object]] | None = None,
        peer: object = None,
        local: object = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(options, peer=peer, local=local, clock=clock)
        self.handler = handler
        self._offload = offload
        self._is_async = isinstance(handler, AsyncHandler)
        self._inline = _inline_hooks(handler)
        self._pending: tuple[Steps, _Call] | None = None

    async def _call(self, call: _Call) -> object:
        try:
            method = getattr(self.handler, call.method)
            kwargs = call.kwargs or {}
            if self._is_async:
                return await method(*call.args, **kwargs)
            if self._offload is not None:
                return await self._offload(functools.partial(method, *call.args, **kwargs))
            return method(*call.args, **kwargs)
        except Exception as exc:
            return _Failed(call.method, exc)

    def _run_nowait(self, steps: Steps) -> bool:
        call = self._advance(steps, None)
        if call is None:
            return True
        self._pending = (steps, call)
        return False

    async def _run(self, steps: Steps) -> None:
        if not self._run_nowait(steps):
            await self.resume()

    @property
    def awaiting(self) -> bool:
        """A ``*_nowait`` method stopped at a handler call: await :meth:`resume` next."""
        return self._pending is not None

    async def resume(self) -> None:
        """Await the handler call a ``*_nowait`` method stopped at, and everything after it
        (nothing to do if none is pending). If this is cancelled inside a handler call, that
        step is abandoned; :meth:`finish` still runs the notices that are owed."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        steps, call = pending
        next_call: _Call | None = call
        while next_call is not None:
            next_call = self._advance(steps, await self._call(next_call))

    def start_nowait(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None = None) -> bool:
        """:meth:`start` without awaiting; False: await :meth:`resume`, then call
        :meth:`after_start`."""
        if ssl_object is not None:
            self._tls_up(ssl_object)
        if self._run_nowait(self._greet()):
            self._implicit_binding()
            return True
        return False

    def after_start(self) -> None:
        """Complete :meth:`start_nowait` once :meth:`resume` has run the connect hook."""
        self._implicit_binding()

    def receive_nowait(self, data: bytes) -> bool:
        """:meth:`receive` without awaiting (see the class docs)."""
        if self.conn.closed:
            return True
        self.conn.receive_data(data)
        return self._run_nowait(self._events())

    def tls_established_nowait(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bool:
        """:meth:`tls_established` without awaiting (see the class docs)."""
        self._tls_up(ssl_object)
        self.conn.tls_started(self.options.channel_binding)
        return self._run_nowait(self._events())

    def finish_nowait(self) -> bool:
        """:meth:`finish` without awaiting (see the class docs). Drops a step left pending by a
        cancelled :meth:`resume`."""
        self._pending = None
        return self._run_nowait(self._finish())

    async def start(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None = None) -> None:
        """See :meth:`SyncServerDriver.start`."""
        if not self.start_nowait(ssl_object):
            await self.resume()
            self._implicit_binding()

    async def receive(self, data: bytes) -> None:
        """See :meth:`SyncServerDriver.receive`."""
        if not self.receive_nowait(data):
            await self.resume()

    async def tls_established(self, ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
        """See :meth:`SyncServerDriver.tls_established`."""
        if not self.tls_established_nowait(ssl_object):
            await self.resume()

    async def finish(self) -> None:
        """See :meth:`SyncServerDriver.finish`."""
        if not self.finish_nowait():
            await self.resume()

