"""The asyncio client: :class:`Client` over asyncio streams.

Same API as the blocking :class:`transports.sockets.Client`, with coroutines (the API itself is
:class:`transports._client_base.AsyncClientBase`; this module only moves bytes). STARTTLS uses
the public ``StreamWriter.start_tls`` (Python 3.11+; on 3.10 use :mod:`transports.anyio` or
implicit TLS); implicit TLS the ``ssl`` argument of ``asyncio.open_connection``. No private
asyncio attribute is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys

from .._client_base import READ_SIZE, AsyncClientBase, io_errors
from ..errors import SMTPTLSError
from ._deadline import ReadDeadline

__all__ = ["Client"]


class Client(AsyncClientBase):
    """An asyncio SMTP/LMTP client (RFC 5321, 3207, 4954, 2033; extensions used when offered).

    ::

        async with Client("mx.example", 587, tls="starttls") as client:
            await client.login("user", "secret")
            result = await client.send_message(email_message)
            assert result.ok, result.refused

    Arguments, results and errors are those of :class:`transports.sockets.Client`. One operation
    at a time per client (a second concurrent one raises ``RuntimeError``).
    """

    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _deadline: ReadDeadline | None = None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object once TLS is up (peer certificate, cipher, version)."""
        if self._writer is None:
            return None
        tls_object: ssl.SSLObject | None = self._writer.get_extra_info("ssl_object")
        return tls_object

    async def close(self) -> None:
        """Close the connection without QUIT (safe to call twice)."""
        writer = self._writer
        await self._abort()
        if writer is not None:
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
                # Bounded tighter than a read: a TLS peer that never answers close_notify must
                # not hold the caller for a whole timeout.
                await asyncio.wait_for(writer.wait_closed(), min(self.options.timeout or 5, 5))

    # --- the primitives (see AsyncClientBase) ---------------------------------------------------

    @property
    def _is_open(self) -> bool:
        return self._writer is not None

    async def _open(self) -> object:
        options = self.options
        implicit = options.implicit_tls
        with io_errors("connect", options):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    options.host,
                    options.port,
                    ssl=options.tls_context() if implicit else None,
                    server_hostname=options.tls_hostname if implicit else None,
                    ssl_handshake_timeout=options.open_timeout if implicit else None,
                ),
                options.open_timeout,
            )
        self._reader, self._writer = reader, writer
        self._deadline = ReadDeadline()
        return writer.get_extra_info("sockname")

    async def _abort(self) -> None:
        # No await before the close: also complete when the task is being cancelled.
        self._end_session()
        writer, self._writer, self._reader = self._writer, None, None
        if self._deadline is not None:
            self._deadline.close()
            self._deadline = None
        if writer is not None:
            writer.close()

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        assert self._writer is not None
        with io_errors("write", self.options):
            self._writer.write(data)
            transport = self._writer.transport
            # drain() only waits while the transport holds more than its high-water mark (the
            # flow control that bounds our memory); below it, it returns at once, so the bounded
            # wait (a Task and a timer for wait_for) is only worth it above the mark, or when the
            # connection is failing (drain() raises its error).
            if (
                transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]
                or transport.is_closing()
            ):
                await asyncio.wait_for(self._writer.drain(), self.options.timeout)

    async def _read(self, timeout: float | None) -> bytes:
        assert self._reader is not None
        assert self._deadline is not None
        with io_errors("read", self.options):
            # One timer per connection, moved per read (not a Task and a timer per read).
            return await self._deadline.read(self._reader, READ_SIZE, timeout)

    async def _start_tls(self, timeout: float | None) -> ssl.SSLObject | None:
        assert self._writer is not None
        options = self.options
        if sys.version_info < (3, 11):  # pragma: no cover - the machine runs 3.11
            raise SMTPTLSError("STARTTLS on transports.asyncio needs Python 3.11")
        with io_errors("tls", options):
            await self._writer.start_tls(  # type: ignore[attr-defined, unused-ignore]
                options.tls_context(),
                server_hostname=options.tls_hostname,
                ssl_handshake_timeout=timeout,
            )
        return self.ssl_object
