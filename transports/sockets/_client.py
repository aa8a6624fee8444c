"""The blocking client over a plain socket: :class:`Client`.

One ``socket.socket`` with a timeout on every operation; TLS is ``SSLContext.wrap_socket`` on the
live socket (STARTTLS) or right after connecting (implicit TLS). The protocol is in the core and
the sequencing in :mod:`transports._client_driver`; this module only moves bytes. The same class
is :class:`transports.threads.Client` (the thread adapter adds a pool helper on top).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TypeVar

from esmtp_core import (
    Capabilities,
    ClientConfig,
    DsnNotify,
    DsnReturn,
    MailParams,
    RcptParams,
    Reply,
)

from .._client_driver import (
    ClientDriver,
    ClientOptions,
    Message,
    SendResult,
    Steps,
    TlsMode,
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


class Client:
    """A blocking SMTP/LMTP client (RFC 5321, 3207, 4954, 2033; extensions used when offered).

    ::

        with Client("mx.example", 587, tls="starttls") as client:
            client.login("user", "secret")
            result = client.send_message(email_message)   # sender/recipients from the headers
            assert result.ok, result.refused

    ``tls``: ``"starttls"`` (required: a server without it is an error),
    ``"starttls-opportunistic"`` (used when offered, plaintext otherwise — see
    :attr:`tls_skipped`), ``"implicit"`` (TLS from the first byte, port 465) or None (plaintext;
    :meth:`starttls` by hand). ``timeout`` bounds
    connecting (unless ``connect_timeout``), each read, each write and each handshake.
    Credentials never go out without TLS unless ``allow_insecure_auth``. ``config`` passes core
    options (:class:`esmtp_core.ClientConfig`, e.g. ``use_chunking=False``).

    Failures raise :mod:`transports.errors` exceptions; refusals carry the server's reply and
    leave the session usable, anything else closes the connection. Not thread-safe: one client
    per thread (see :func:`transports.threads.send_messages`).
    """

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
        self.options = ClientOptions.build(
            host,
            port,
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
        self._sock: socket.socket | None = None
        self._driver: ClientDriver | None = None

    # --- state ----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A session is open (``connect()`` succeeded and nothing closed it since)."""
        return self._sock is not None and self._driver is not None and not self._driver.closed

    @property
    def capabilities(self) -> Capabilities:
        """What the server offered in its last EHLO/LHLO reply."""
        return self._require().capabilities

    @property
    def greeting(self) -> Reply | None:
        """The server's ``220`` greeting."""
        return self._driver.greeting if self._driver is not None else None

    @property
    def tls_active(self) -> bool:
        """The session runs over TLS."""
        return self._driver is not None and self._driver.conn.tls_active

    @property
    def tls_skipped(self) -> str | None:
        """Why opportunistic STARTTLS was not used (None when TLS is up or was not wanted)."""
        return self._driver.tls_skipped if self._driver is not None else None

    @property
    def authenticated(self) -> str | None:
        """The SASL mechanism of a successful ``login()``, else None."""
        return self._driver.conn.authenticated if self._driver is not None else None

    @property
    def ssl_object(self) -> ssl.SSLSocket | None:
        """The TLS socket once TLS is up (peer certificate, cipher, version)."""
        return self._sock if isinstance(self._sock, ssl.SSLSocket) else None

    # --- operations -----------------------------------------------------------------------------

    def connect(self) -> Reply:
        """Connect, read the greeting, EHLO (LHLO), and STARTTLS as ``tls`` says; returns the
        greeting. With ``tls="starttls"``, a server without STARTTLS raises
        :class:`~transports.errors.SMTPTLSError`."""
        if self._sock is not None:
            raise RuntimeError("already connected")
        options = self.options
        try:
            sock = socket.create_connection((options.host, options.port), options.open_timeout)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"connecting to {_where(options)} timed out") from exc
        except OSError as exc:
            raise SMTPConnectionError(f"cannot connect to {_where(options)}: {exc}") from exc
        self._sock = sock
        try:
            if options.implicit_tls:
                self._start_tls()
            self._driver = ClientDriver(options, sock.getsockname())
            self._sock.settimeout(options.timeout)
            return self._run(self._driver.connect())
        except BaseException:
            self.close()  # a refused greeting, EHLO or STARTTLS ends the attempt too
            raise

    def ehlo(self) -> Reply:
        """EHLO (LHLO) again; :attr:`capabilities` is refreshed."""
        return self._run(self._require().ehlo())

    def starttls(self) -> Reply:
        """STARTTLS now (RFC 3207), then EHLO again; for ``tls=None`` sessions."""
        return self._run(self._require().starttls())

    def login(
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
        steps = self._require().login(
            username, password, token=token, authzid=authzid, mechanism=mechanism
        )
        return self._run(steps)

    def send_message(
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
        PIPELINING, CHUNKING (BDAT), BINARYMIME (bodies with NUL or bare CR/LF), 8BITMIME, SMTPUTF8
        and SIZE are used when offered; ``binary=True`` forces ``BODY=BINARYMIME`` (needs the
        server's CHUNKING and BINARYMIME). ``dsn_notify``/``dsn_return``/``envid`` ask for
        delivery status notifications when the server offers DSN (RFC 3461).
        Raises :class:`~transports.errors.SMTPSendError` (sender refused, every recipient refused,
        message refused) when no recipient got it; a partial success returns normally.
        """
        steps = self._require().send_message(
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
        return self._run(steps)

    def noop(self) -> Reply:
        """NOOP (keeps the session alive; checks it is)."""
        return self._run(self._require().noop())

    def rset(self) -> Reply:
        """RSET."""
        return self._run(self._require().rset())

    def quit(self) -> Reply | None:
        """QUIT and close; returns the server's 221 (None if it had closed already)."""
        if self._driver is None or self._sock is None:
            self.close()
            return None
        try:
            return self._run(self._driver.quit())
        except SMTPClientError:
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection without QUIT (safe to call twice)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Client:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None or isinstance(exc, SMTPReplyError):
            self.quit()
        else:
            self.close()

    # --- the runner -----------------------------------------------------------------------------

    def _require(self) -> ClientDriver:
        if self._driver is None or self._sock is None:
            raise SMTPConnectionError("not connected: call connect() first")
        return self._driver

    def _run(self, steps: Steps[T]) -> T:
        driver = self._require()
        try:
            try:
                want = next(steps)
                while True:
                    self._write(driver.data_to_send())
                    result: object = self._read() if want is Want.READ else self._start_tls()
                    want = steps.send(result)
            except StopIteration as stop:
                self._write(driver.data_to_send())
                value: T = stop.value
                return value
        except BaseException as exc:
            if must_close(driver, exc):
                self.close()
            raise
        finally:
            steps.close()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"writing to {_where(self.options)} timed out") from exc
        except OSError as exc:
            raise SMTPServerDisconnected(f"connection lost while writing: {exc}") from exc

    def _read(self) -> bytes:
        assert self._sock is not None
        try:
            return self._sock.recv(_READ_SIZE)
        except TimeoutError as exc:
            timeout = self.options.timeout
            raise SMTPTimeoutError(f"no reply from the server within {timeout}s") from exc
        except OSError as exc:  # a reset is the server going away
            raise SMTPServerDisconnected(f"connection lost: {exc}") from exc

    def _start_tls(self) -> ssl.SSLSocket:
        assert self._sock is not None
        options = self.options
        context = options.tls_context()
        self._sock.settimeout(options.timeout)
        try:
            self._sock = context.wrap_socket(self._sock, server_hostname=options.tls_hostname)
        except TimeoutError as exc:
            raise SMTPTimeoutError(f"TLS handshake with {_where(options)} timed out") from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise SMTPTLSError(f"TLS handshake with {_where(options)} failed: {exc}") from exc
        except OSError as exc:
            raise SMTPServerDisconnected(f"connection lost in the TLS handshake: {exc}") from exc
        return self._sock


def _where(options: ClientOptions) -> str:
    return f"{options.host}:{options.port}"
