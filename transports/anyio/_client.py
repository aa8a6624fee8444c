"""The anyio client: :class:`Client` on anyio, running on asyncio or on trio.

Same API as the blocking :class:`transports.sockets.Client`, with coroutines. The connection is
``anyio.connect_tcp``; TLS (STARTTLS and implicit) is ``anyio.streams.tls.TLSStream`` over it;
timeouts are ``anyio.fail_after`` scopes. anyio is imported only here (an optional dependency).
The protocol is in the core and the sequencing in :mod:`transports._client_driver`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from esmtp_core import DsnNotify, DsnReturn, MailParams, RcptParams, Reply

from .._client_driver import (
    ClientBase,
    ClientOptions,
    Message,
    SendResult,
    Steps,
    Want,
    must_close,
)
from ..errors import (
    SMTPClientError,
    SMTPConnectionError,
    SMTPReplyError,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
)

__all__ = ["Client"]

T = TypeVar("T")

_READ_SIZE = 65536
#: What a broken connection looks like through anyio's streams.
_LOST = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class Client(ClientBase):
    """An anyio SMTP/LMTP client for asyncio and trio (RFC 5321, 3207, 4954, 2033).

    ::

        async with Client("mx.example", 587, tls="starttls") as client:
            await client.login("user", "secret")
            result = await client.send_message(email_message)
            assert result.ok, result.refused

    Arguments, results and errors are those of :class:`transports.sockets.Client`. One operation
    at a time per client (a second concurrent one raises ``RuntimeError``).
    """

    _stream: anyio.abc.ByteStream | None = None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object once TLS is up (peer certificate, cipher, version)."""
        if self._stream is None:
            return None
        tls_object: ssl.SSLObject | None = self._stream.extra(  # noqa: S610
            TLSAttribute.ssl_object, None
        )
        return tls_object

    # --- operations -----------------------------------------------------------------------------

    async def connect(self) -> Reply:
        """Connect, read the greeting, EHLO (LHLO), and STARTTLS as ``tls`` says; returns the
        greeting. With ``tls="starttls"``, a server without STARTTLS raises
        :class:`~transports.errors.SMTPTLSError`."""
        if self._stream is not None:
            raise RuntimeError("already connected")
        options = self.options
        try:
            with anyio.fail_after(options.open_timeout):
                self._stream = await anyio.connect_tcp(options.host, options.port)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"connecting to {_where(options)} timed out") from exc
        except OSError as exc:
            raise SMTPConnectionError(f"cannot connect to {_where(options)}: {exc}") from exc
        try:
            local = self._stream.extra(anyio.abc.SocketAttribute.local_address, None)  # noqa: S610
            if options.implicit_tls:
                await self._start_tls(options.open_timeout)
            driver = self._new_session(local)
            return await self._run(driver.connect())
        except BaseException:
            await self._abort()  # a refused greeting, EHLO or STARTTLS ends the attempt too
            raise

    async def ehlo(self) -> Reply:
        """EHLO (LHLO) again; :attr:`capabilities` is refreshed."""
        return await self._run(self._session().ehlo())

    async def starttls(self) -> Reply:
        """STARTTLS now (RFC 3207), then EHLO again; for ``tls=None`` sessions."""
        return await self._run(self._session().starttls())

    async def login(
        self,
        username: str,
        password: str | None = None,
        *,
        token: str | None = None,
        authzid: str | None = None,
        mechanism: str | None = None,
    ) -> Reply:
        """AUTH (RFC 4954) with the strongest mechanism offered (SCRAM before CRAM-MD5 before
        PLAIN/LOGIN; XOAUTH2/OAUTHBEARER with ``token``) or ``mechanism``; returns the 235."""
        steps = self._session().login(
            username, password, token=token, authzid=authzid, mechanism=mechanism
        )
        return await self._run(steps)

    async def send_message(
        self,
        message: Message,
        sender: str | None = None,
        recipients: Iterable[str] | None = None,
        *,
        mail_params: MailParams | None = None,
        rcpt_params: RcptParams | Mapping[str, RcptParams] | None = None,
        dsn_notify: Iterable[DsnNotify] | None = None,
        dsn_return: DsnReturn | None = None,
        envid: str | None = None,
        binary: bool = False,
    ) -> SendResult:
        """Send one message; returns the per-recipient :class:`~transports.SendResult`.

        ``message`` is an :class:`email.message.EmailMessage` (sender and recipients default
        from its headers, ``Bcc`` is stripped, as :meth:`smtplib.SMTP.send_message`) or the exact
        bytes (then ``sender`` and ``recipients`` are required; ``""`` is the null sender).
        PIPELINING, CHUNKING (BDAT), 8BITMIME, SMTPUTF8 and SIZE are used when offered; line
        endings are made CRLF, unless ``binary=True`` sends the bytes exactly as
        ``BODY=BINARYMIME`` (needs the server's CHUNKING and BINARYMIME).
        ``dsn_notify``/``dsn_return``/``envid`` ask for delivery status notifications when the
        server offers DSN (RFC 3461).
        Raises :class:`~transports.errors.SMTPSendError` (sender refused, every recipient refused,
        message refused) when no recipient got it; a partial success returns normally.
        """
        steps = self._session().send_message(
            message,
            sender,
            recipients,
            mail_params=mail_params,
            rcpt_params=rcpt_params,
            dsn_notify=dsn_notify,
            dsn_return=dsn_return,
            envid=envid,
            binary=binary,
        )
        return await self._run(steps)

    async def noop(self) -> Reply:
        """NOOP (keeps the session alive; checks it is)."""
        return await self._run(self._session().noop())

    async def rset(self) -> Reply:
        """RSET."""
        return await self._run(self._session().rset())

    async def quit(self) -> Reply | None:
        """QUIT and close; returns the server's 221 (None if it had closed already)."""
        if self._driver is None:
            await self.close()
            return None
        try:
            return await self._run(self._driver.quit())
        except SMTPClientError:
            return None
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection without QUIT (safe to call twice)."""
        await self._abort()

    async def __aenter__(self) -> Client:
        if self._stream is None:
            await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None or isinstance(exc, SMTPReplyError):
            await self.quit()
        else:
            await self.close()

    # --- the runner -----------------------------------------------------------------------------

    async def _run(self, steps: Steps[T]) -> T:
        driver = self._session()
        driver.run_guard()
        try:
            try:
                want = next(steps)
                while True:
                    await self._write(driver.data_to_send())
                    if want is Want.READ:
                        result: object = await self._read()
                    else:
                        result = await self._start_tls(self.options.timeout)
                    want = steps.send(result)
            except StopIteration as stop:
                await self._write(driver.data_to_send())
                value: T = stop.value
                return value
        except BaseException as exc:
            if must_close(driver, exc):
                await self._abort()
            raise
        finally:
            steps.close()

    async def _abort(self) -> None:
        """Drop the connection at once (shielded: also runs while being cancelled)."""
        self._end_session()
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        assert self._stream is not None
        try:
            with anyio.fail_after(self.options.timeout):
                await self._stream.send(data)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"writing to {_where(self.options)} timed out") from exc
        except (*_LOST, ssl.SSLError) as exc:
            raise SMTPServerDisconnected(f"connection lost while writing: {exc!r}") from exc

    async def _read(self) -> bytes:
        assert self._stream is not None
        try:
            with anyio.fail_after(self.options.timeout):
                return await self._stream.receive(_READ_SIZE)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            timeout = self.options.timeout
            raise SMTPTimeoutError(f"no reply from the server within {timeout}s") from exc
        except (*_LOST, ssl.SSLError) as exc:  # a reset is the server going away
            raise SMTPServerDisconnected(f"connection lost: {exc!r}") from exc

    async def _start_tls(self, timeout: float | None) -> ssl.SSLObject | None:
        assert self._stream is not None
        options = self.options
        try:
            with anyio.fail_after(timeout):
                # standard_compatible=False: SMTP servers often close without close_notify, and
                # the protocol (QUIT/221, the final dot) already says where the data ends.
                self._stream = await TLSStream.wrap(
                    self._stream,
                    server_side=False,
                    hostname=options.tls_hostname,
                    ssl_context=options.tls_context(),
                    standard_compatible=False,
                )
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"TLS handshake with {_where(options)} timed out") from exc
        except ssl.SSLError as exc:
            raise SMTPTLSError(f"TLS handshake with {_where(options)} failed: {exc}") from exc
        except (*_LOST, anyio.EndOfStream) as exc:
            raise SMTPServerDisconnected(f"connection lost in the TLS handshake: {exc!r}") from exc
        return self.ssl_object


def _where(options: ClientOptions) -> str:
    return f"{options.host}:{options.port}"
