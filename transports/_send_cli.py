"""``esmtp send``: send one message (a file or standard input) to an SMTP or LMTP server.

::

    esmtp send --server HOST:PORT [--starttls | --tls] [--user U --password P]
               --from ADDR --to ADDR [--to ADDR ...] [--lmtp] [--binary]
               [--allow-insecure-auth] [--transport sockets|threads|asyncio|anyio|trio]
               [--cafile FILE | --insecure] [--helo NAME] [--timeout SECONDS] [FILE | -]

The message is sent as read with its line endings made CRLF (a file with LF lines is fine), or
byte for byte with ``--binary``; the envelope is ``--from``/``--to`` (headers are not read;
``--from ''`` is the null sender).
``--starttls`` requires STARTTLS (a server without it is an error, never a plaintext fallback);
``--tls`` is TLS from the first byte (port 465). Certificates are verified against the system
store, or ``--cafile``; ``--insecure`` skips verification (test servers only). The password may
also come from the ``ESMTP_PASSWORD`` environment variable (keeps it out of ``ps``). ``--binary``
sends the body as ``BODY=BINARYMIME`` over BDAT (RFC 3030), and fails if the server lacks it.

Exit status: 0 when the message was accepted for every recipient; 1 when the server refused it
for at least one recipient, or refused the sender, the message or the credentials, or lacks what
the message needs (SMTPUTF8, BINARYMIME, SIZE, AUTH) — each refused recipient and the server's
reply on stderr; 2 for a usage error; 3 when the session failed (cannot connect, TLS required
but not offered or refused, handshake, timeout, the server broke the protocol or went away).
Failures are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._cli_common import UsageError, host_port, seconds
from ._client_driver import ClientOptions, SendResult, TlsMode
from .errors import (
    SMTPClientError,
    SMTPNotSupportedError,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPSendError,
    SMTPTLSError,
)

__all__ = ["build_parser", "main"]

TRANSPORTS = ("sockets", "threads", "asyncio", "anyio", "trio")
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
_LINE_END = re.compile(rb"\r\n|\r|\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``esmtp send``."""
    parser = argparse.ArgumentParser(
        prog="esmtp send",
        description="Send one message to an SMTP (or LMTP) server. Exit status 0 only when "
        "every recipient accepted it; 1 refused; 2 usage; 3 connection/TLS/protocol failure.",
    )
    parser.add_argument("--server", required=True, type=host_port, metavar="HOST:PORT",
                        help="the server to send to")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true",
                     help="require STARTTLS (fail if the server does not offer it)")
    tls.add_argument("--tls", action="store_true", help="TLS from the first byte (port 465)")
    parser.add_argument("--user", help="log in (AUTH) with this user name")
    parser.add_argument("--password",
                        help="password for --user (default: $ESMTP_PASSWORD)")
    parser.add_argument("--from", dest="sender", required=True, metavar="ADDR",
                        help="envelope sender (MAIL FROM); '' for the null sender")
    parser.add_argument("--to", dest="recipients", action="append", required=True,
                        metavar="ADDR", help="envelope recipient (RCPT TO); repeat for more")
    parser.add_argument("--lmtp", action="store_true", help="speak LMTP (LHLO)")
    parser.add_argument("--binary", action="store_true",
                        help="send the body as BINARYMIME over BDAT, byte for byte")
    parser.add_argument("--allow-insecure-auth", action="store_true",
                        help="allow sending the password without TLS")
    parser.add_argument("--transport", choices=TRANSPORTS, default="sockets",
                        help="I/O adapter (default sockets)")
    verify = parser.add_mutually_exclusive_group()
    verify.add_argument("--cafile", metavar="FILE",
                        help="trust the CA certificates in this PEM file")
    verify.add_argument("--insecure", action="store_true",
                        help="do not verify the server certificate (test servers only)")
    parser.add_argument("--helo", metavar="NAME", help="name sent in EHLO/LHLO")
    parser.add_argument("--timeout", type=seconds, default=60.0, metavar="SECONDS",
                        help="connect and per-reply timeout (default 60)")
    parser.add_argument("file", nargs="?", default="-", metavar="FILE",
                        help="the message (RFC 5322, CRLF or LF lines); '-' or absent: stdin")
    return parser


@dataclass(frozen=True)
class _Job:
    host: str
    port: int
    client_options: dict[str, Any]
    login: tuple[str, str] | None
    sender: str
    recipients: list[str]
    message: bytes
    binary: bool


def _job(args: argparse.Namespace) -> _Job:
    password = args.password if args.password is not None else os.environ.get("ESMTP_PASSWORD")
    if args.password is not None and args.user is None:
        raise UsageError("--password needs --user")
    if args.user is not None and password is None:
        raise UsageError("--user needs --password (or ESMTP_PASSWORD in the environment)")
    mode: TlsMode | None = "starttls" if args.starttls else "implicit" if args.tls else None
    if (args.cafile or args.insecure) and mode is None:
        raise UsageError("--cafile and --insecure only make sense with --starttls or --tls")
    context: ssl.SSLContext | None = None
    if mode is not None:
        from .tls import client_context  # noqa: PLC0415

        try:
            context = client_context(args.cafile, verify=not args.insecure)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--cafile {args.cafile}: {exc}") from None
    try:
        message = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the message: {exc}") from None
    if not args.binary:
        # A text file with LF (or CR) line endings is meant as lines: send canonical CRLF rather
        # than let bare line ends turn it into a BINARYMIME body.
        message = _LINE_END.sub(b"\r\n", message)
    host, port = args.server
    try:  # the same validation the client does, reported as a usage error
        ClientOptions(host=host, port=port, local_hostname=args.helo)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options: dict[str, Any] = {
        "tls": mode,
        "ssl_context": context,
        "timeout": args.timeout,
        "lmtp": args.lmtp,
        "allow_insecure_auth": args.allow_insecure_auth,
        "local_hostname": args.helo,
    }
    login = (args.user, password) if args.user is not None and password is not None else None
    return _Job(host, port, options, login, args.sender, args.recipients, message, args.binary)


# --- one runner per transport, all doing: connect, login, send, quit --------------------------


def _run_blocking(job: _Job) -> SendResult:
    from .sockets import Client  # noqa: PLC0415 - transports.threads.Client is the same class

    with Client(job.host, job.port, **job.client_options) as client:
        if job.login is not None:
            client.login(*job.login)
        return client.send_message(job.message, job.sender, job.recipients, binary=job.binary)


async def _send_async(client_class: Any, job: _Job) -> SendResult:
    async with client_class(job.host, job.port, **job.client_options) as client:
        if job.login is not None:
            await client.login(*job.login)
        result: SendResult = await client.send_message(
            job.message, job.sender, job.recipients, binary=job.binary
        )
        return result


def _run_asyncio(job: _Job) -> SendResult:
    import asyncio  # noqa: PLC0415

    from .asyncio import Client  # noqa: PLC0415

    return asyncio.run(_send_async(Client, job))


def _run_anyio(job: _Job, backend: str) -> SendResult:
    import anyio  # noqa: PLC0415

    from .anyio import Client  # noqa: PLC0415

    result: SendResult = anyio.run(_send_async, Client, job, backend=backend)
    return result


_RUNNERS: dict[str, Callable[[_Job], SendResult]] = {
    "sockets": _run_blocking,
    "threads": _run_blocking,
    "asyncio": _run_asyncio,
    "anyio": lambda job: _run_anyio(job, "asyncio"),
    "trio": lambda job: _run_anyio(job, "trio"),
}


def _report(result: SendResult) -> None:
    for recipient, reply in result.refused.items():
        print(f"esmtp send: refused for <{recipient}>: {_one_line(reply)}", file=sys.stderr)
    if result.refused:
        for recipient in result.accepted:
            print(f"esmtp send: accepted for <{recipient}>", file=sys.stderr)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def main(argv: Sequence[str]) -> int:
    """Run ``esmtp send`` with the arguments after ``send``; returns the exit status."""
    args = build_parser().parse_args(list(argv))
    try:
        job = _job(args)
    except UsageError as exc:
        print(f"esmtp send: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = _RUNNERS[args.transport](job)
    except SMTPSenderRefused as exc:
        print(f"esmtp send: sender <{job.sender}> refused: {_one_line(exc.reply)}",
              file=sys.stderr)
        return EXIT_REFUSED
    except SMTPSendError as exc:
        _report(exc.result)
        return EXIT_REFUSED
    except SMTPNotSupportedError as exc:
        print(f"esmtp send: cannot send: {_one_line(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except SMTPTLSError as exc:  # before SMTPReplyError: a refused STARTTLS is both
        print(f"esmtp send: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except SMTPReplyError as exc:
        print(f"esmtp send: {_one_line(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except SMTPClientError as exc:
        print(f"esmtp send: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except ImportError as exc:
        print(f"esmtp send: --transport {args.transport} needs {exc.name}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    _report(result)
    return EXIT_OK if result.ok else EXIT_REFUSED
