"""Message storage for ``esmtp serve`` and for users: Maildir, mbox and stdout.

Every stored message is the body exactly as received (after dot-unstuffing) with two trace
header fields prepended (RFC 5321 §4.4): ``Return-Path`` with the reverse-path and a
``Received`` field naming the client, this server, the protocol (``with`` keywords of RFC 3848 and
RFC 6531) and, for a single recipient, the ``for`` clause.

Durability comes before the ``250`` (RFC 5321 §6.1: once the server says OK it is responsible for
the message): :class:`StoringHandler` returns from ``message_end`` only after the store committed.

* :class:`Maildir` — each message is written to ``tmp/`` under a unique name, ``fsync``-ed,
  renamed into ``new/`` and the ``new/`` directory is ``fsync``-ed (so the rename itself is on
  disk). A half-received message never appears in ``new/``.
* :class:`Mbox` — mboxrd: a ``From `` separator line, ``>``-quoting of ``>*From `` lines, a blank
  line after the message; appended under ``fcntl.lockf`` (and a process-wide lock, since POSIX
  record locks do not exclude threads of one process), then ``fsync``-ed. The message is spooled
  while it arrives, so concurrent sessions never interleave. Line endings are kept as received.
* :class:`Stdout` — the spooled message written to standard output in one piece.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import fcntl
import hmac
import itertools
import os
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

from esmtp_core import Reply

from .handler import Envelope, Handler, MessageResult, Session

__all__ = [
    "Maildir",
    "Mbox",
    "MessageStore",
    "MessageWriter",
    "Stdout",
    "StoringHandler",
    "received_protocol",
    "trace_headers",
]

_SPOOL_MEMORY = 1 << 20  # spool files stay in memory up to this size


def received_protocol(session: Session) -> str:
    """The ``with`` keyword of the Received field (RFC 5321 §4.4, RFC 3848, RFC 6531 §3.7.3).

    ``SMTP`` after HELO; ``ESMTP`` after EHLO and ``LMTP`` after LHLO, suffixed ``S`` under TLS
    and ``A`` after AUTH (``ESMTPSA``), prefixed ``UTF8`` when the transaction used SMTPUTF8.
    """
    if session.hello_verb == "HELO":
        return "SMTP"
    base = "LMTP" if session.lmtp else "ESMTP"
    suffix = ("S" if session.tls_active else "") + ("A" if session.authenticated else "")
    if session.envelope is not None and session.envelope.smtputf8:
        # RFC 6531 registers UTF8SMTP/UTF8LMTP (not UTF8ESMTP) with the same S/A suffixes.
        return "UTF8" + base.removeprefix("E") + suffix
    return base + suffix


def _clean(text: str) -> str:
    # Names come from the client; the core already refused CR/LF, but a header must never be
    # split by anything a peer sent, so drop every control character.
    return "".join(ch for ch in text if ch >= " " and ch != "\x7f")


def _address_literal(host: str) -> str:
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


def trace_headers(
    session: Session,
    envelope: Envelope,
    *,
    message_id: str | None = None,
    date: str | None = None,
) -> bytes:
    """``Return-Path`` and ``Received`` header fields (RFC 5321 §4.4) as CRLF-terminated bytes.

    ``message_id`` goes into the ``id`` clause; ``date`` defaults to the current local time in
    RFC 5322 format.
    """
    peer = _address_literal(session.peer[0]) if session.peer else "unknown"
    helo = _clean(session.hello_name or "unknown")
    lines = [
        f"Return-Path: <{_clean(envelope.mail_from)}>",
        f"Received: from {helo} ({peer})",
        f"\tby {_clean(session.hostname)} with {received_protocol(session)}"
        + (f" id {message_id}" if message_id else ""),
    ]
    when = date or email.utils.formatdate(localtime=True)
    if len(envelope.rcpt_to) == 1:
        # RFC 5321 §4.4: the FOR clause names exactly one path; with several recipients it is
        # left out rather than disclosing the whole list to each of them.
        lines.append(f"\tfor <{_clean(envelope.rcpt_to[0])}>; {when}")
    else:
        lines[-1] += f"; {when}"
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


class MessageWriter(Protocol):
    """One message being stored: ``write`` pieces, then ``commit`` (durable) or ``abort``."""

    def write(self, data: bytes) -> None:
        """Append bytes to the message."""

    def commit(self) -> str:
        """Make the message durable; returns where it went (a path or a description)."""

    def abort(self) -> None:
        """Discard everything written; never raises."""


class MessageStore(Protocol):
    """A place messages go: :class:`Maildir`, :class:`Mbox`, :class:`Stdout` or your own."""

    def open(self, sender: str) -> MessageWriter:
        """Start a message from the envelope ``sender``."""


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Maildir:
    """A Maildir (``tmp/``, ``new/``, ``cur/``), created if missing.

    Unique names follow the Maildir convention ``<seconds>.M<usec>P<pid>Q<n>R<random>.<host>``
    (microseconds and counter zero-padded, so one process's deliveries sort in order)
    with ``/`` and ``:`` in the host name written as ``\\057`` and ``\\072``.
    """

    _counter = itertools.count(1)

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        host = socket.gethostname() or "localhost"
        self._host = host.replace("/", "\\057").replace(":", "\\072")

    def unique_name(self) -> str:
        """A file name no other delivery (in any process) will use."""
        now = time.time()
        seconds, usec = int(now), int((now % 1) * 1_000_000)
        # Fixed-width microseconds and counter: within one process, names sort in delivery order.
        return (
            f"{seconds}.M{usec:06d}P{os.getpid()}Q{next(self._counter):09d}"
            f"R{secrets.token_hex(4)}.{self._host}"
        )

    def open(self, sender: str) -> _MaildirWriter:
        """Create the file in ``tmp/`` (exclusively: a name collision is an error, not a
        silent overwrite)."""
        for _ in range(5):
            name = self.unique_name()
            tmp = self.path / "tmp" / name
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            return _MaildirWriter(self, name, os.fdopen(fd, "wb"))
        raise OSError(errno.EEXIST, "could not find a unique Maildir name")


class _MaildirWriter:
    def __init__(self, maildir: Maildir, name: str, file: BinaryIO) -> None:
        self._maildir = maildir
        self._name = name
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> str:
        tmp = self._maildir.path / "tmp" / self._name
        new = self._maildir.path / "new" / self._name
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(tmp, new)
        except BaseException:
            self.abort()
            raise
        # The rename is only durable once the directory entry is: without this a crash right
        # after our 250 could lose a message we took responsibility for.
        _fsync_directory(new.parent)
        return str(new)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._maildir.path / "tmp" / self._name)


class _SpoolWriter:
    """Spools a message (memory, then a temporary file) until commit hands it to ``sink``."""

    def __init__(self, sink: _Sink, sender: str) -> None:
        self._sink = sink
        self._sender = sender
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self._spool.write(data)

    def commit(self) -> str:
        try:
            self._spool.seek(0)
            return self._sink.deliver(self._sender, self._spool)
        finally:
            self._spool.close()

    def abort(self) -> None:
        self._spool.close()


class _Sink(Protocol):
    def deliver(self, sender: str, spool: IO[bytes]) -> str: ...


# mboxrd (https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml): any line that
# starts with zero or more ">" followed by "From " gets one more ">", so reading reverses exactly.
_MBOXRD_QUOTE = re.compile(rb">*From ")

_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _path_locks_guard:
        return _path_locks.setdefault(str(path.resolve()), threading.Lock())


class Mbox:
    """An mboxrd file, appended to under ``fcntl.lockf`` and ``fsync``-ed before commit returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = _lock_for(self.path)

    def open(self, sender: str) -> _SpoolWriter:
        """Spool a message from ``sender``; it is appended at commit."""
        return _SpoolWriter(self, sender)

    def deliver(self, sender: str, spool: IO[bytes]) -> str:
        """Append one spooled message (used by the writer's commit)."""
        from_line = f"From {_clean(sender) or 'MAILER-DAEMON'} {time.asctime()}\n"
        with self._lock, open(self.path, "ab") as file:
            fcntl.lockf(file, fcntl.LOCK_EX)
            try:
                start = file.tell()
                try:
                    file.write(from_line.encode("utf-8"))
                    last = b"\n"
                    for line in spool:
                        if _MBOXRD_QUOTE.match(line):
                            file.write(b">")
                        file.write(line)
                        last = line
                    if not last.endswith(b"\n"):
                        file.write(b"\n")
                    file.write(b"\n")
                    file.flush()
                    os.fsync(file.fileno())
                except BaseException:
                    # Leave the mailbox as it was rather than with half a message in it.
                    file.truncate(start)
                    raise
            finally:
                fcntl.lockf(file, fcntl.LOCK_UN)
        return str(self.path)


class Stdout:
    """Writes each message, whole, to a binary stream (default: standard output)."""

    _lock = threading.Lock()

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream

    def open(self, sender: str) -> _SpoolWriter:
        """Spool a message; it is written out at commit."""
        return _SpoolWriter(self, sender)

    def deliver(self, sender: str, spool: IO[bytes]) -> str:
        """Write one spooled message and flush."""
        stream = self.stream if self.stream is not None else sys.stdout.buffer
        with self._lock:
            while block := spool.read(1 << 16):
                stream.write(block)
            stream.flush()
        return "stdout"


_WRITER_KEY = "transports.storage.writer"


class StoringHandler(Handler):
    """A :class:`~transports.handler.Handler` that stores every message in ``store``.

    ``credentials`` (user name to password) enables password checks for AUTH; without it every
    login is refused. The body streams into the store as it arrives, so memory stays bounded.
    """

    def __init__(
        self, store: MessageStore, *, credentials: Mapping[str, str] | None = None
    ) -> None:
        self.store = store
        self.credentials = dict(credentials or {})

    def message_start(self, session: Session, envelope: Envelope) -> None:
        writer = self.store.open(envelope.mail_from)
        session.extra[_WRITER_KEY] = writer
        message_id = f"{session.id}.{session.messages_accepted + 1}.{secrets.token_hex(4)}"
        writer.write(trace_headers(session, envelope, message_id=message_id))

    def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
        self._writer(session).write(data)

    def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        location = self._writer(session).commit()
        del session.extra[_WRITER_KEY]
        return Reply.make(250, "2.0.0", f"Ok: stored as {Path(location).name}")

    def message_aborted(self, session: Session, envelope: Envelope) -> None:
        writer = session.extra.pop(_WRITER_KEY, None)
        if writer is not None:
            cast(MessageWriter, writer).abort()

    def disconnect(self, session: Session) -> None:
        self.message_aborted(session, Envelope(mail_from=""))

    def check_password(
        self, session: Session, username: str, password: str, *, authzid: str | None = None
    ) -> bool:
        """Compare in constant time; an authorization identity other than the user is refused."""
        expected = self.credentials.get(username)
        if expected is None or (authzid not in (None, username)):
            return False
        return hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8"))

    def lookup_secret(self, session: Session, mechanism: str, username: str) -> str | None:
        return self.credentials.get(username)

    @staticmethod
    def _writer(session: Session) -> MessageWriter:
        return cast(MessageWriter, session.extra[_WRITER_KEY])
