"""The anyio client: :class:`Client` on anyio, running on asyncio or on trio.

Same API as the blocking :class:`transports.sockets.Client`, with coroutines (the API itself is
:class:`transports._client_base.AsyncClientBase`; this module only moves bytes). The connection
is ``anyio.connect_tcp``; TLS (STARTTLS and implicit) is ``anyio.streams.tls.TLSStream`` over it;
timeouts are ``anyio.fail_after`` scopes. anyio is imported only here (an optional dependency).
"""

from __future__ import annotations

import ssl

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from .._client_base import READ_SIZE, AsyncClientBase, io_errors

__all__ = ["Client"]

#: What a broken connection looks like through anyio's streams.
_LOST = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class Client(AsyncClientBase):
    """An anyio SMTP/LMTP client for asyncio and trio (RFC 5321, 3207, 4954, 2033).

    ::

        async def main() -> None:
            async with Client("mx.example", 587, tls="starttls") as client:
                await client.login("user", "secret")
                result = await client.send_message(email_message)
                assert result.ok, result.refused

        anyio.run(main, backend="trio")  # or "asyncio"

    Arguments, results and errors are those of :class:`transports.sockets.Client`. One operation
    at a time per client (a second concurrent one raises ``RuntimeError``).
    """

    _stream: anyio.abc.ByteStream | None = None
    # The event loop's clock for the reply deadline (trio's may be a test's virtual clock).
    _clock = staticmethod(anyio.current_time)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object once TLS is up (peer certificate, cipher, version)."""
        if self._stream is None:
            return None
        tls_object: ssl.SSLObject | None = self._stream.extra(  # noqa: S610
            TLSAttribute.ssl_object, None
        )
        return tls_object

    # --- the primitives (see AsyncClientBase) ---------------------------------------------------

    @property
    def _is_open(self) -> bool:
        return self._stream is not None

    async def _open(self) -> object:
        options = self.options
        with io_errors("connect", options), anyio.fail_after(options.open_timeout):
            self._stream = await anyio.connect_tcp(options.host, options.port)
        try:
            local = self._stream.extra(anyio.abc.SocketAttribute.local_address, None)  # noqa: S610
            if options.implicit_tls:
                await self._start_tls(options.open_timeout)
        except BaseException:
            await self._abort()
            raise
        return local

    async def _abort(self) -> None:
        # Shielded: the connection is closed also while the task is being cancelled.
        self._end_session()
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        assert self._stream is not None
        with io_errors("write", self.options, _LOST), anyio.fail_after(self.options.timeout):
            await self._stream.send(data)

    async def _read(self, timeout: float | None) -> bytes:
        assert self._stream is not None
        with io_errors("read", self.options, _LOST), anyio.fail_after(timeout):
            try:
                return await self._stream.receive(READ_SIZE)
            except anyio.EndOfStream:  # the server closed: the core hears about it as b""
                return b""

    async def _start_tls(self, timeout: float | None) -> ssl.SSLObject | None:
        assert self._stream is not None
        options = self.options
        with io_errors("tls", options, (*_LOST, anyio.EndOfStream)), anyio.fail_after(timeout):
            # standard_compatible=False: SMTP servers often close without close_notify, and
            # the protocol (QUIT/221, the final dot) already says where the data ends.
            self._stream = await TLSStream.wrap(
                self._stream,
                server_side=False,
                hostname=options.tls_hostname,
                ssl_context=options.tls_context(),
                standard_compatible=False,
            )
        return self.ssl_object
