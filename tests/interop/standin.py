"""A stand-in Maildir server built on aiosmtpd, used to prove the peer helpers on their own.

The interop tests proper run the peers against ``esmtp serve``; these helpers were validated first
against a server nobody here wrote, so that a failing interop test points at our code and not at
the harness. The stand-in stores messages the way ``esmtp serve`` does (DESIGN.md): a
``Return-Path`` and a ``Received`` field (RFC 5321 §4.4) prepended to the exact bytes received.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._common import LOOPBACK, TestPKI, free_port


@dataclass
class StandIn:
    """A running stand-in server: its port, Maildir and the envelopes it accepted."""

    port: int
    maildir: Path
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    host: str = LOOPBACK


class _MaildirHandler:
    """aiosmtpd handler: write each message into a Maildir (tmp/ then rename into new/)."""

    def __init__(self, standin: StandIn, hostname: str) -> None:
        self._standin = standin
        self._hostname = hostname
        self._lock = threading.Lock()
        self._counter = 0
        for sub in ("tmp", "new", "cur"):
            (standin.maildir / sub).mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        trace = (
            f"Return-Path: <{envelope.mail_from}>\r\n"
            f"Received: from {session.host_name} ([{session.peer[0]}])\r\n"
            f"\tby {self._hostname} (aiosmtpd stand-in); {email.utils.formatdate()}\r\n"
        ).encode()
        with self._lock:
            self._counter += 1
            name = f"{os.getpid()}.{self._counter:06d}.standin"
            self._standin.envelopes.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "mail_options": list(envelope.mail_options),
                    "rcpt_options": list(envelope.rcpt_options),
                }
            )
        # Names sort in arrival order: a zero-padded counter behind a fixed-width prefix.
        tmp = self._standin.maildir / "tmp" / name
        tmp.write_bytes(trace + envelope.original_content)
        tmp.rename(self._standin.maildir / "new" / name)
        return "250 2.0.0 Ok: stored"


@contextlib.contextmanager
def aiosmtpd_maildir_server(
    maildir: Path,
    *,
    pki: TestPKI | None = None,
    implicit_tls: bool = False,
    users: dict[str, str] | None = None,
    hostname: str = "standin.test",
) -> Iterator[StandIn]:
    """Run aiosmtpd on ``127.0.0.1`` storing into ``maildir``; STARTTLS when ``pki`` is given
    (or implicit TLS with ``implicit_tls``), AUTH PLAIN/LOGIN over TLS when ``users`` is given."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - test-only dependency
    from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: PLC0415

    standin = StandIn(port=free_port(), maildir=maildir)
    accounts = dict(users or {})

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8")
        ok = accounts.get(user) == auth_data.password.decode("utf-8")
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {"server_hostname": hostname, "enable_SMTPUTF8": True}
    if pki is not None and implicit_tls:
        kwargs["ssl_context"] = pki.server_context()
    elif pki is not None:
        kwargs |= {"tls_context": pki.server_context(), "require_starttls": False}
    if users is not None:
        kwargs |= {"authenticator": authenticator, "auth_require_tls": pki is not None}
    controller = Controller(
        _MaildirHandler(standin, hostname),
        hostname=LOOPBACK,
        port=standin.port,
        **kwargs,
    )
    controller.start()
    try:
        yield standin
    finally:
        controller.stop()


def smtp_greeting(port: int, host: str = LOOPBACK, timeout: float = 5.0) -> bytes:
    """Read a server's first reply line (a quick liveness check that speaks SMTP)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        return sock.makefile("rb").readline()
