"""``esmtp serve``: an SMTP (or LMTP) server that stores every accepted message.

Options as in DESIGN.md. Logs one line per connection and per accepted message to stderr; stops
gracefully on SIGINT/SIGTERM (the transaction in flight is finished, then 421) and exits 0.
Configuration mistakes are one line on stderr and exit status 2; a failure to start (address in
use, unreadable certificate) exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from esmtp_core import SERVER_MECHANISMS, ChannelBinding, ServerConfig

from . import tls
from ._cli_common import UsageError, host_port, seconds
from .storage import Maildir, Mbox, MessageStore, Stdout, StoringHandler

__all__ = ["build_parser", "main", "parse_listen", "read_auth_file"]

logger = logging.getLogger("transports.cli")

TRANSPORTS = ("asyncio", "anyio", "trio", "threads", "sockets")
#: Seconds a graceful stop waits for sessions to end before cutting them.
SHUTDOWN_GRACE = 30.0


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces) as ``(host, port)``."""
    return host_port(value, listening=True)


def read_auth_file(path: str | Path) -> dict[str, str]:
    """``user:password`` lines (split at the first colon); blank lines and ``#`` comments are
    skipped. Raises :class:`UsageError` for a malformed line."""
    credentials: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise UsageError(f"{path}:{number}: expected 'user:password'")
        credentials[user] = password
    return credentials


def _positive_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``esmtp serve``."""
    parser = argparse.ArgumentParser(
        prog="esmtp serve",
        description="Run an SMTP (or LMTP) server that stores every message it accepts.",
    )
    parser.add_argument(
        "--listen", type=parse_listen, default=("127.0.0.1", 8025), metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8025; port 0 picks a free port)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--maildir", metavar="DIR", help="store in this Maildir (default ./maildir)")
    where.add_argument("--mbox", metavar="FILE", help="append to this mbox file (mboxrd)")
    where.add_argument("--stdout", action="store_true", help="write messages to standard output")
    parser.add_argument("--hostname", help="name in the greeting and EHLO reply")
    parser.add_argument("--transport", choices=TRANSPORTS, default="asyncio",
                        help="I/O adapter (default asyncio)")
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain); enables TLS")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    parser.add_argument("--self-signed", action="store_true",
                        help="enable TLS with an ephemeral self-signed certificate")
    parser.add_argument("--implicit-tls", action="store_true",
                        help="TLS from the first byte (port 465 style) instead of STARTTLS")
    parser.add_argument("--auth-file", metavar="FILE",
                        help="'user:password' lines; enables AUTH")
    parser.add_argument("--require-auth", action="store_true",
                        help="MAIL needs a successful AUTH first (530 otherwise)")
    parser.add_argument("--allow-insecure-auth", action="store_true",
                        help="offer AUTH without TLS (default: only after TLS)")
    parser.add_argument("--max-size", type=_positive_int, metavar="BYTES",
                        help="largest message accepted (0: no limit)")
    parser.add_argument("--max-recipients", type=_positive_int, metavar="N",
                        help="recipients per message")
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS",
                        help="idle/command timeout (default 300)")
    parser.add_argument("--lmtp", action="store_true",
                        help="speak LMTP (LHLO, one reply per recipient)")
    return parser


@dataclass(frozen=True)
class _Setup:
    transport: str
    host: str
    port: int
    handler: StoringHandler
    server_options: dict[str, Any]


def _tls(
    args: argparse.Namespace, hostname: str
) -> tuple[ssl.SSLContext | None, ChannelBinding | None]:
    if args.tls_key and not args.tls_cert:
        raise UsageError("--tls-key needs --tls-cert")
    if args.self_signed and args.tls_cert:
        raise UsageError("--self-signed and --tls-cert are exclusive")
    if args.self_signed:
        return tls.self_signed_context(hostname)
    if args.tls_cert:
        context = tls.server_context(args.tls_cert, args.tls_key)
        return context, tls.server_end_point_binding_for_file(args.tls_cert)
    if args.implicit_tls:
        raise UsageError("--implicit-tls needs --tls-cert/--tls-key or --self-signed")
    return None, None


def _store(args: argparse.Namespace) -> MessageStore:
    if args.stdout:
        return Stdout()
    if args.mbox:
        return Mbox(args.mbox)
    return Maildir(args.maildir or "maildir")


def _setup(args: argparse.Namespace) -> _Setup:
    hostname = args.hostname or socket.gethostname() or "localhost"
    credentials = read_auth_file(args.auth_file) if args.auth_file else None
    if args.require_auth and credentials is None:
        raise UsageError("--require-auth needs --auth-file")
    tls_context, binding = _tls(args, hostname)
    if credentials is not None and tls_context is None and not args.allow_insecure_auth:
        raise UsageError(
            "--auth-file without TLS would never offer AUTH: add --tls-cert/--tls-key or "
            "--self-signed, or --allow-insecure-auth"
        )
    mechanisms: tuple[str, ...] = ()
    if credentials is not None:
        # SCRAM first (the password never crosses the wire), -PLUS when channel binding exists;
        # the core offers a -PLUS variant only when the transport supplied the binding. The
        # auth file holds plain passwords, so CRAM-MD5 (RFC 2195) can be offered too, for the
        # clients that still prefer it; like the rest it is offered only under TLS by default.
        wanted = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]
        mechanisms = tuple(name for name in wanted if name in SERVER_MECHANISMS)
    config_options: dict[str, Any] = {
        "hostname": hostname,
        "lmtp": args.lmtp,
        "auth_mechanisms": mechanisms,
        "auth_require_tls": not args.allow_insecure_auth,
        "auth_required": args.require_auth,
    }
    if args.max_size is not None:
        config_options["max_message_size"] = args.max_size or None
    if args.max_recipients is not None:
        config_options["max_recipients"] = args.max_recipients
    try:
        config = ServerConfig(**config_options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    server_options: dict[str, Any] = {
        "config": config,
        "tls_context": tls_context,
        "implicit_tls": args.implicit_tls,
        "channel_binding": binding,
    }
    if args.timeout is not None:
        server_options["timeout"] = args.timeout
        server_options["data_timeout"] = max(600.0, args.timeout)
    host, port = args.listen
    handler = StoringHandler(_store(args), credentials=credentials)
    return _Setup(args.transport, host, port, handler, server_options)


# --- one runner per transport: serve until SIGINT/SIGTERM, then shut down gracefully ------------


def _run_asyncio(setup: _Setup) -> None:
    import asyncio  # noqa: PLC0415

    from .asyncio import Server  # noqa: PLC0415

    async def serve() -> None:
        server = Server(setup.handler, host=setup.host, port=setup.port, **setup.server_options)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        # Handlers first: the "listening" log line means a signal now stops us cleanly.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await server.start()
        serving = loop.create_task(server.serve_forever())
        await stop.wait()
        logger.info("stopping (signal)")
        await server.shutdown(SHUTDOWN_GRACE)
        await serving

    asyncio.run(serve())


def _run_anyio(setup: _Setup, backend: str) -> None:
    import anyio  # noqa: PLC0415

    from .anyio import Server  # noqa: PLC0415

    async def serve() -> None:
        server = Server(setup.handler, host=setup.host, port=setup.port, **setup.server_options)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await server.start()
            async with anyio.create_task_group() as group:
                group.start_soon(server.serve_forever)
                async for _ in signals:
                    break
                logger.info("stopping (signal)")
                await server.shutdown(SHUTDOWN_GRACE)

    anyio.run(serve, backend=backend)


def _run_blocking(setup: _Setup, module_name: str) -> None:
    import importlib  # noqa: PLC0415

    server_class = importlib.import_module(module_name).Server
    server = server_class(setup.handler, host=setup.host, port=setup.port, **setup.server_options)
    signalled = threading.Event()

    def stop_on_signal() -> None:
        # The shutdown waits for sessions: it runs here, never inside the signal handler.
        signalled.wait()
        logger.info("stopping (signal)")
        server.shutdown(SHUTDOWN_GRACE)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signalled.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    server.start()
    threading.Thread(target=stop_on_signal, name="esmtp-stop", daemon=True).start()
    server.serve_forever()


_RUNNERS: dict[str, Callable[[_Setup], None]] = {
    "asyncio": _run_asyncio,
    "anyio": lambda setup: _run_anyio(setup, "asyncio"),
    "trio": lambda setup: _run_anyio(setup, "trio"),
    "threads": lambda setup: _run_blocking(setup, "transports.threads"),
    "sockets": lambda setup: _run_blocking(setup, "transports.sockets"),
}


def main(argv: list[str]) -> int:
    """Run ``esmtp serve`` with the arguments after ``serve``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s esmtp: %(message)s"
        )
    try:
        setup = _setup(args)
    except UsageError as exc:
        print(f"esmtp serve: {exc}", file=sys.stderr)
        return 2
    except (OSError, ssl.SSLError, RuntimeError) as exc:
        print(f"esmtp serve: {exc}", file=sys.stderr)
        return 1
    try:
        _RUNNERS[setup.transport](setup)
    except (ImportError, LookupError) as exc:  # anyio raises LookupError for a missing trio
        extra = "trio" if setup.transport == "trio" else "anyio"
        print(
            f"esmtp serve: --transport {setup.transport} is not installed ({exc}); "
            f"pip install 'esmtp-core[{extra}]'",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"esmtp serve: cannot serve on {setup.host}:{setup.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during the graceful stop
        return 130
    with contextlib.suppress(Exception):
        logger.info("stopped")
    return 0
