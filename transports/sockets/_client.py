"""The blocking client over a plain socket: :class:`Client`.

One ``socket.socket`` with a timeout on every operation; TLS is ``SSLContext.wrap_socket`` on the
live socket (STARTTLS) or right after connecting (implicit TLS).

How the timeouts are kept decides the system calls per message. A Python socket with a timeout
polls before *every* send and recv (``poll`` + ``sendto``, ``poll`` + ``recvfrom``): four polls
per message, two of them (before a send into a socket buffer with room) pure overhead. So on
64-bit Linux, while the connection is plain TCP, the socket stays in blocking mode and:

* a write is one ``send(MSG_DONTWAIT)``; only when the socket buffer is full (a large body, a
  slow server) does it wait with ``poll``, within ``timeout`` for the whole write, as
  ``settimeout`` + ``sendall`` would;
* a read is one blocking ``recv`` bounded by the kernel (``SO_RCVTIMEO``, set to the time the
  driver gives: a system call only when that time changes, which it does only for the second and
  later reads of one reply). The one difference from ``settimeout``: a signal arriving during a
  read restarts its wait (PEP 475 retries the call), so a process flooded with signals could wait
  longer than the reply deadline.

Once TLS is on (the ``ssl`` module needs a Python-level timeout) and on other platforms, the
socket's own timeout is used as before (set only when it changes). The protocol is in the core and
the sequencing in :mod:`transports._client_driver`; this module only moves bytes. The same class
is :class:`transports.threads.Client` (the thread adapter adds a pool helper on top).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import sys
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TypeVar

from esmtp_core import DsnNotify, DsnReturn, MailParams, RcptParams, Reply

from .._client_base import READ_SIZE, ClientBase, io_errors
from .._client_driver import BatchItem, Message, SendResult, Steps, Want, must_close
from ..errors import SMTPClientError, SMTPReplyError

__all__ = ["Client"]

T = TypeVar("T")


class Client(ClientBase):
    """A blocking SMTP/LMTP client (RFC 5321, 3207, 4954, 2033; extensions used when offered).

    ::

        with Client("mx.example", 587, tls="starttls") as client:
            client.login("user", "secret")
            result = client.send_message(email_message)   # sender/recipients from the headers
            assert result.ok, result.refused

    ``tls``: ``"starttls"`` (required: a server without it is an error),
    ``"starttls-opportunistic"`` (used when offered, plaintext otherwise — see
    :attr:`tls_skipped`), ``"implicit"`` (TLS from the first byte, port 465) or None (plaintext;
    :meth:`starttls` by hand). ``timeout`` bounds connecting (unless ``connect_timeout``), each
    write and each handshake, and each reply as a whole: a server trickling a reply byte by
    byte is given up on after ``timeout`` seconds too.
    Credentials never go out without TLS unless ``allow_insecure_auth``. ``config`` passes core
    options (:class:`esmtp_core.ClientConfig`, e.g. ``use_chunking=False``).

    Failures raise :mod:`transports.errors` exceptions; refusals carry the server's reply and
    leave the session usable, anything else closes the connection. Not thread-safe: one client
    per thread (see :func:`transports.threads.send_messages`).
    """

    _sock: socket.socket | None = None
    #: Plain TCP with kernel-side timeouts (see the module documentation).
    _plain = False
    #: The receive timeout last given to the kernel (None: none).
    _rcv_timeout: float | None = None

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
        with io_errors("connect", options):
            sock = socket.create_connection((options.host, options.port), options.open_timeout)
        # Every write is a whole flight of commands (or a body): Nagle's algorithm could only
        # hold back its last, short segment until the previous one is acknowledged. asyncio
        # sets the same option on its TCP connections.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _KERNEL_TIMEOUTS and not options.implicit_tls:
            sock.settimeout(None)  # blocking mode; the kernel bounds each read (_read)
            self._plain = True
            self._rcv_timeout = None
        self._sock = sock
        try:
            if options.implicit_tls:
                self._start_tls()
            return self._run(self._new_session(self._sock.getsockname()).connect())
        except BaseException:
            self.close()  # a refused greeting, EHLO or STARTTLS ends the attempt too
            raise

    def ehlo(self) -> Reply:
        """EHLO (LHLO) again; :attr:`capabilities` is refreshed."""
        return self._run(self._session().ehlo())

    def starttls(self) -> Reply:
        """STARTTLS now (RFC 3207), then EHLO again; for ``tls=None`` sessions."""
        return self._run(self._session().starttls())

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
        steps = self._session().login(
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
        return self._run(steps)

    def send_many(
        self,
        messages: Iterable[Message | BatchItem],
        *,
        window: int = 8,
        binary: bool = False,
    ) -> list[SendResult | SMTPClientError]:
        """Send many messages over this session, pipelined across messages (RFC 2920 §3.1: the
        next transaction follows the previous end of data in the same flight, up to ``window``
        transactions unanswered; one at a time when the server lacks PIPELINING).

        Each item is a message as for :meth:`send_message` (an ``EmailMessage`` with its own
        envelope) or ``(message, sender, recipients)`` (or an object with those attributes,
        such as :class:`transports.threads.Outgoing`). Returns one entry per message, in order:
        its :class:`~transports.SendResult`, or the :class:`~transports.errors.SMTPClientError`
        it failed with (refused, not supported, or the session ended first); nothing is raised
        for a single message. A bad item raises ``ValueError``/``TypeError`` before anything is
        sent; a timeout or protocol error raises and closes the connection (messages in flight
        may then have been delivered).
        """
        return self._run(self._session().send_many(messages, window=window, binary=binary))

    def noop(self) -> Reply:
        """NOOP (keeps the session alive; checks it is)."""
        return self._run(self._session().noop())

    def rset(self) -> Reply:
        """RSET."""
        return self._run(self._session().rset())

    def quit(self) -> Reply | None:
        """QUIT and close; returns the server's 221 (None if it had closed already)."""
        if self._driver is None:
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
        self._end_session()
        sock, self._sock = self._sock, None
        self._plain = False
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

    def _run(self, steps: Steps[T]) -> T:
        driver = self._session()
        driver.run_guard()
        try:
            try:
                want = next(steps)
                while True:
                    self._write(driver.data_to_send())
                    if want is Want.READ:
                        result: object = self._read(driver.read_timeout())
                    elif want is Want.WRITE:
                        result = None
                    else:
                        result = self._start_tls()
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
        sock = self._sock
        assert sock is not None
        with io_errors("write", self.options):
            if self._plain:
                _send_all(sock, data, self.options.timeout)
                return
            _set_timeout(sock, self.options.timeout)
            sock.sendall(data)

    def _read(self, timeout: float | None) -> bytes:
        sock = self._sock
        assert sock is not None
        with io_errors("read", self.options):
            if self._plain:
                if timeout != self._rcv_timeout:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(timeout))
                    self._rcv_timeout = timeout
                try:
                    return sock.recv(READ_SIZE)
                except BlockingIOError:  # EAGAIN from a blocking socket: SO_RCVTIMEO ran out
                    raise TimeoutError("timed out") from None
            _set_timeout(sock, timeout)
            return sock.recv(READ_SIZE)

    def _start_tls(self) -> ssl.SSLSocket:
        assert self._sock is not None
        options = self.options
        context = options.tls_context()
        with io_errors("tls", options):
            if self._plain:  # from now on the ssl module keeps the timeouts
                self._plain = False
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(None))
            self._sock.settimeout(options.timeout)
            self._sock = context.wrap_socket(self._sock, server_hostname=options.tls_hostname)
        return self._sock


#: Kernel-side timeouts for plain TCP (module documentation): Linux has ``MSG_DONTWAIT`` and a
#: ``SO_RCVTIMEO`` taking a ``struct timeval`` of two native longs on 64-bit builds (32-bit
#: builds may use either of two layouts, so they keep Python's timeouts).
_KERNEL_TIMEOUTS = sys.platform == "linux" and struct.calcsize("l") == 8


def _timeval(timeout: float | None) -> bytes:
    """``timeout`` as the ``struct timeval`` of ``SO_RCVTIMEO``; None is zero (no timeout),
    and a positive timeout is at least a microsecond (zero would mean none)."""
    if timeout is None:
        return struct.pack("ll", 0, 0)
    micros = max(1, int(timeout * 1_000_000 + 0.999))  # rounded up: never shorter than asked
    return struct.pack("ll", *divmod(micros, 1_000_000))


def _send_all(sock: socket.socket, data: bytes, timeout: float | None) -> None:
    """Send ``data`` on a blocking socket within ``timeout`` for the whole write (None: no
    limit): one ``send(MSG_DONTWAIT)`` when the socket buffer has room, which is the rule for
    commands and small bodies; ``poll`` for room only when it is full. Raises ``TimeoutError``
    when the time runs out, ``OSError`` when the connection fails."""
    try:
        sent = sock.send(data, socket.MSG_DONTWAIT)
    except BlockingIOError:
        sent = 0
    if sent == len(data):
        return
    rest = memoryview(data)[sent:]
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    while rest:
        wait_ms = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            wait_ms = left * 1000
        if not poller.poll(wait_ms):
            continue  # the deadline is checked above
        try:  # after POLLERR/POLLHUP the send raises the connection's error
            sent = sock.send(rest, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        rest = rest[sent:]


def _set_timeout(sock: socket.socket, timeout: float | None) -> None:
    """``sock.settimeout(timeout)``, skipped when the socket already has that timeout to the
    microsecond: it is a system call each time, and a write and the read of its reply usually
    ask for the same time (the full timeout; the reply deadline starts at that read)."""
    current = sock.gettimeout()
    if current == timeout or (
        current is not None and timeout is not None and abs(current - timeout) < 1e-6
    ):
        return
    sock.settimeout(timeout)
