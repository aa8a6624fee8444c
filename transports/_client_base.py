"""What every adapter's ``Client`` shares besides the protocol itself.

* :class:`ClientBase` — the constructor and the session state properties (no I/O);
* :class:`AsyncClientBase` — the whole public API of the async clients (``connect`` ... ``quit``,
  ``async with``) and their runner; :mod:`transports.asyncio` and :mod:`transports.anyio` only
  provide the stream primitives (open, read, write, TLS handshake, abort);
* :func:`io_errors` — how a failed connect, read, write or handshake becomes a
  :mod:`transports.errors` exception, the same on every stack.

The blocking client (:class:`transports.sockets.Client`) has the same methods without ``await``;
the protocol and the sequencing of every operation are in :mod:`transports._client_driver`, and
so is the reply deadline (:meth:`ClientDriver.read_timeout`): a runner reads with the time the
driver gives it, so each reply must be complete within ``timeout``, not just each read.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Literal, TypeVar

from esmtp_core import (
    Capabilities,
    ClientConfig,
    DsnNotify,
    DsnReturn,
    MailParams,
    RcptParams,
    Reply,
)

from ._client_driver import (
    BatchItem,
    ClientDriver,
    ClientOptions,
    Message,
    SendResult,
    Steps,
    TlsMode,
    Want,
    channel_binding,
    must_close,
    reply_overdue,
)
from .errors import (
    SMTPClientError,
    SMTPConnectionError,
    SMTPReplyError,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
)

__all__ = ["AsyncClientBase", "ClientBase", "io_errors"]

T = TypeVar("T")
A = TypeVar("A", bound="AsyncClientBase")

#: Bytes asked for per read (a read returns what has arrived, up to this).
READ_SIZE = 65536

#: The timeout exception of each supported event loop (``asyncio.TimeoutError`` is not the
#: builtin one before Python 3.11).
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)

Step = Literal["connect", "read", "write", "tls"]


class ClientBase:
    """Constructor and session state shared by every adapter's ``Client`` (no I/O here).

    Arguments are validated by :class:`ClientOptions`; the adapter sets ``_driver`` when a
    connection is up (:meth:`_new_session`) and back to None when it closes (:meth:`_end_session`).
    """

    #: The clock of the reply deadline (the anyio client uses the event loop's).
    _clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        local_hostname: str | None = None,
        tls: TlsMode | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float | None = 60.0,
        connect_timeout: float | None = None,
        lmtp: bool = False,
        allow_insecure_auth: bool = False,
        config: ClientConfig | None = None,
    ) -> None:
        self.options = ClientOptions(
            host=host,
            port=port,
            local_hostname=local_hostname,
            tls=tls,
            ssl_context=ssl_context,
            server_hostname=server_hostname,
            timeout=timeout,
            connect_timeout=connect_timeout,
            lmtp=lmtp,
            allow_insecure_auth=allow_insecure_auth,
            config=config,
        )
        self._driver: ClientDriver | None = None
        #: The last session's driver, kept after close() for the state properties.
        self._last: ClientDriver | None = None

    @property
    def connected(self) -> bool:
        """A session is open (``connect()`` succeeded and nothing closed it since)."""
        return self._driver is not None and not self._driver.closed

    @property
    def capabilities(self) -> Capabilities:
        """What the server offered in its last EHLO/LHLO reply (empty before connecting)."""
        driver = self._driver or self._last
        return driver.capabilities if driver is not None else Capabilities()

    @property
    def greeting(self) -> Reply | None:
        """The server's greeting."""
        driver = self._driver or self._last
        return driver.greeting if driver is not None else None

    @property
    def tls_active(self) -> bool:
        """The session runs over TLS (implicit, or STARTTLS done)."""
        return self._driver is not None and self._driver.conn.tls_active

    @property
    def tls_skipped(self) -> str | None:
        """Why opportunistic STARTTLS was not used; None when TLS is up or was not wanted."""
        driver = self._driver or self._last
        return driver.tls_skipped if driver is not None else None

    @property
    def authenticated(self) -> str | None:
        """The SASL mechanism of a successful ``login()`` in this session, else None."""
        return self._driver.conn.authenticated if self._driver is not None else None

    @property
    def ssl_object(self) -> ssl.SSLObject | ssl.SSLSocket | None:
        """The TLS object once TLS is up (each adapter provides it)."""
        return None

    def _session(self) -> ClientDriver:
        if self._driver is None:
            raise SMTPConnectionError("not connected: call connect() first")
        return self._driver

    def _new_session(self, local_address: object) -> ClientDriver:
        driver = ClientDriver(self.options, local_address, clock=self._clock)
        self._driver = self._last = driver
        if self.options.implicit_tls:  # the handshake is done: bind SCRAM-*-PLUS to it
            driver.conn.set_channel_binding(channel_binding(self.ssl_object))
        return driver

    def _end_session(self) -> None:
        self._driver = None


class io_errors:
    """Turn what a connect, read, write or TLS handshake raised into a
    :mod:`transports.errors` exception; ``lost`` are the stack's "connection broken" types::

        with io_errors("read", options):
            data = sock.recv(READ_SIZE)

    A timeout becomes :class:`SMTPTimeoutError`, a TLS failure :class:`SMTPTLSError`, a broken
    connection :class:`SMTPConnectionError` (not connected yet) or
    :class:`SMTPServerDisconnected` (it was). Our own exceptions pass unchanged.

    A class rather than a ``contextlib.contextmanager`` generator: it wraps every read and write,
    and entering and leaving it must cost next to nothing when nothing is raised.
    """

    __slots__ = ("_lost", "_options", "_step")

    def __init__(
        self,
        step: Step,
        options: ClientOptions,
        lost: tuple[type[BaseException], ...] = (OSError,),
    ) -> None:
        self._step = step
        self._options = options
        self._lost = lost

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, SMTPClientError):
            return  # nothing raised, or one of ours: passes unchanged
        error = _translate(self._step, self._options, self._lost, exc)
        if error is not None:
            raise error from exc


def _translate(
    step: Step,
    options: ClientOptions,
    lost: tuple[type[BaseException], ...],
    exc: BaseException,
) -> SMTPClientError | None:
    """The exception ``exc`` becomes (see :class:`io_errors`), or None to let it pass."""
    where = f"{options.host}:{options.port}"
    if isinstance(exc, _TIMEOUTS):
        if step == "read":
            return reply_overdue(options)
        what = {"connect": "connecting to", "write": "writing to", "tls": "TLS handshake with"}
        return SMTPTimeoutError(f"{what[step]} {where} timed out")
    if isinstance(exc, ssl.SSLError):  # before OSError, its base class
        if step in ("connect", "tls"):
            return SMTPTLSError(f"TLS handshake with {where} failed: {exc}")
        return SMTPServerDisconnected(f"connection lost: {exc!r}")
    if isinstance(exc, lost):  # a reset is the server going away
        if step == "connect":
            return SMTPConnectionError(f"cannot connect to {where}: {exc}")
        during = {"read": "", "write": " while writing", "tls": " in the TLS handshake"}[step]
        return SMTPServerDisconnected(f"connection lost{during}: {exc!r}")
    return None


class AsyncClientBase(ClientBase):
    """The async clients' API (RFC 5321, 3207, 4954, 2033; extensions used when offered): the
    methods of :class:`transports.sockets.Client` as coroutines, ``async with`` for
    ``with``; examples are on :class:`transports.asyncio.Client` and
    :class:`transports.anyio.Client`.

    A subclass provides the stream primitives: :meth:`_open`, :meth:`_read`, :meth:`_write`,
    :meth:`_start_tls`, :meth:`_abort` and :attr:`_is_open`.
    """

    # --- the adapter's primitives ---------------------------------------------------------------

    @property
    def _is_open(self) -> bool:
        """A connection exists (maybe not yet greeted)."""
        raise NotImplementedError

    async def _open(self) -> object:
        """Connect (and, for implicit TLS, do the handshake); return our end's address. Raises
        :mod:`transports.errors` exceptions and leaves nothing open when it fails."""
        raise NotImplementedError

    async def _read(self, timeout: float | None) -> bytes:
        """Read once, waiting at most ``timeout`` seconds; ``b""`` at the end of the stream."""
        raise NotImplementedError

    async def _write(self, data: bytes) -> None:
        """Write all of ``data`` (each write bounded by ``options.timeout``)."""
        raise NotImplementedError

    async def _start_tls(self, timeout: float | None) -> ssl.SSLObject | None:
        """The client side of a TLS handshake on the live connection; returns the TLS object."""
        raise NotImplementedError

    async def _abort(self) -> None:
        """Drop the connection at once (must also work while being cancelled)."""
        raise NotImplementedError

    # --- operations -----------------------------------------------------------------------------

    async def connect(self) -> Reply:
        """Connect, read the greeting, EHLO (LHLO), and STARTTLS as ``tls`` says; returns the
        greeting. With ``tls="starttls"``, a server without STARTTLS raises
        :class:`~transports.errors.SMTPTLSError`."""
        if self._is_open:
            raise RuntimeError("already connected")
        local_address = await self._open()
        try:
            return await self._run(self._new_session(local_address).connect())
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

        Arguments, results and errors are those of
        :meth:`transports.sockets.Client.send_message`.
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

    async def send_many(
        self,
        messages: Iterable[Message | BatchItem],
        *,
        window: int = 8,
        binary: bool = False,
    ) -> list[SendResult | SMTPClientError]:
        """Send many messages over this session, pipelined across messages; one result per
        message, in order. Arguments, results and errors are those of
        :meth:`transports.sockets.Client.send_many`."""
        return await self._run(self._session().send_many(messages, window=window, binary=binary))

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

    async def __aenter__(self: A) -> A:
        if not self._is_open:
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

    # --- the runner (see transports._client_driver) ---------------------------------------------

    async def _run(self, steps: Steps[T]) -> T:
        driver = self._session()
        driver.run_guard()
        try:
            try:
                want = next(steps)
                while True:
                    data = driver.data_to_send()
                    if data:  # (no coroutine for nothing: most reads follow an empty flush)
                        await self._write(data)
                    if want is Want.READ:
                        result: object = await self._read(driver.read_timeout())
                    elif want is Want.WRITE:
                        result = None
                    else:
                        result = await self._start_tls(self.options.timeout)
                    want = steps.send(result)
            except StopIteration as stop:
                await self._flush(driver)
                value: T = stop.value
                return value
        except BaseException as exc:
            if must_close(driver, exc):
                await self._abort()
            raise
        finally:
            steps.close()

    async def _flush(self, driver: ClientDriver) -> None:
        """Write what ``driver`` still holds when an operation ends (e.g. a QUIT's bytes)."""
        data = driver.data_to_send()
        if data:
            await self._write(data)
