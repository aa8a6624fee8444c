"""A discarding SMTP server for the end-to-end benchmarks, run as a child process.

``python -m benchmarks.serve KIND [--max-size OCTETS]`` binds an ephemeral port on 127.0.0.1,
prints ``READY <port>`` on stdout, and then serves until its stdin is closed. Each line read on
stdin makes it print ``{"utime": ..., "stime": ...}`` (its own ``getrusage(RUSAGE_SELF)``: every
thread, microsecond resolution) so that the parent can take the server's CPU around a run.

KIND is ``aiosmtpd`` (the peer, with a handler that discards the message) or one of our adapters
(see :data:`KINDS`). Every server accepts every sender and recipient and throws the body away,
so what is measured is the SMTP machinery itself.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import importlib.util
import json
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "OUR_KINDS", "kind_missing", "main"]


#: Set by ``--profile``: at EOF the main thread is interrupted (so that it can write the
#: profile) instead of the process ending at once.
_PROFILING = False


def _control_loop() -> None:
    """Answer CPU-time queries on stdin; exit the process at EOF (the parent is done)."""
    for _line in sys.stdin:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sys.stdout.write(json.dumps({"utime": usage.ru_utime, "stime": usage.ru_stime}) + "\n")
        sys.stdout.flush()
    sys.stdout.flush()
    if _PROFILING:
        os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt in the main thread
        return
    os._exit(0)  # no cleanup needed: a discarding server holds nothing worth flushing


def _ready(port: int) -> None:
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    threading.Thread(target=_control_loop, name="control", daemon=True).start()


def serve_aiosmtpd(max_size: int) -> None:
    """aiosmtpd with a discarding ``handle_DATA`` (aiosmtpd itself still collects the body in
    ``envelope.content`` before calling the handler; that is how it works)."""
    import asyncio  # noqa: PLC0415

    from aiosmtpd.smtp import SMTP  # noqa: PLC0415

    class Discard:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 Ok: discarded"

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), data_size_limit=max_size, hostname="bench.example"),
            "127.0.0.1", 0,
        )
        _ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(run())


#: KIND -> function(max_size) that serves forever.
def _config(max_size: int) -> Any:
    from esmtp_core import ServerConfig  # noqa: PLC0415

    # The strict defaults (bare LF/CR rejected, line limits), only the size limit raised.
    return ServerConfig(hostname="bench.example", max_message_size=max_size)


def _async_discard() -> Any:
    """A streaming AsyncHandler that accepts everything and drops every body chunk."""
    from transports.handler import AsyncHandler, Envelope, Session  # noqa: PLC0415

    class Discard(AsyncHandler):
        async def message_start(self, session: Session, envelope: Envelope) -> None:
            return None

        async def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
            return None

        async def message_end(self, session: Session, envelope: Envelope) -> None:
            return None

    return Discard()


def _sync_discard() -> Any:
    """The synchronous twin of :func:`_async_discard` (for the thread and socket adapters)."""
    from transports.handler import Envelope, Handler, Session  # noqa: PLC0415

    class Discard(Handler):
        def message_start(self, session: Session, envelope: Envelope) -> None:
            return None

        def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
            return None

        def message_end(self, session: Session, envelope: Envelope) -> None:
            return None

    return Discard()


def serve_asyncio(max_size: int) -> None:
    """Our asyncio adapter with a discarding streaming handler."""
    import asyncio  # noqa: PLC0415

    from transports.asyncio import Server  # noqa: PLC0415

    async def run() -> None:
        server = Server(_async_discard(), host="127.0.0.1", port=0, config=_config(max_size))
        await server.start()
        _ready(server.address[1])
        await server.serve_forever()

    asyncio.run(run())


def _serve_anyio(max_size: int, backend: str) -> None:
    import anyio  # noqa: PLC0415

    from transports.anyio import Server  # noqa: PLC0415

    async def run() -> None:
        server = Server(_async_discard(), host="127.0.0.1", port=0, config=_config(max_size))
        await server.start()
        _ready(server.address[1])
        await server.serve_forever()

    anyio.run(run, backend=backend)


def serve_anyio_asyncio(max_size: int) -> None:
    """Our anyio adapter on the asyncio backend."""
    _serve_anyio(max_size, "asyncio")


def serve_anyio_trio(max_size: int) -> None:
    """Our anyio adapter on the trio backend."""
    _serve_anyio(max_size, "trio")


def _serve_sync(max_size: int, module: str) -> None:
    import importlib  # noqa: PLC0415

    server_class = importlib.import_module(module).Server
    server = server_class(_sync_discard(), host="127.0.0.1", port=0, config=_config(max_size))
    server.start()
    _ready(server.address[1])
    server.serve_forever()


def serve_threads(max_size: int) -> None:
    """Our threads adapter (the sockets loop plus hand-off of blocking handler calls)."""
    _serve_sync(max_size, "transports.threads")


def serve_sockets(max_size: int) -> None:
    """Our selectors-based plain-socket adapter."""
    _serve_sync(max_size, "transports.sockets")


# Peers and adapters are imported inside their function (noqa PLC0415): each child process
# loads only what it serves, so the RSS baseline of one is not inflated by the others.
KINDS: dict[str, Callable[[int], None]] = {
    "aiosmtpd": serve_aiosmtpd,
    "asyncio": serve_asyncio,
    "anyio-asyncio": serve_anyio_asyncio,
    "anyio-trio": serve_anyio_trio,
    "threads": serve_threads,
    "sockets": serve_sockets,
}

#: The module each of our kinds needs (a kind whose module is not there yet is skipped).
_MODULES = {
    "asyncio": "transports.asyncio",
    "anyio-asyncio": "transports.anyio",
    "anyio-trio": "transports.anyio",
    "threads": "transports.threads",
    "sockets": "transports.sockets",
}

#: Our adapters, as KIND -> the name shown in the tables.
OUR_KINDS: dict[str, str] = {
    "asyncio": "esmtp asyncio",
    "anyio-asyncio": "esmtp anyio (asyncio)",
    "anyio-trio": "esmtp anyio (trio)",
    "threads": "esmtp threads",
    "sockets": "esmtp sockets",
}


def kind_missing(kind: str) -> str | None:
    """Why server KIND cannot run here (its adapter is not written yet), or None."""
    module = _MODULES.get(kind)
    if module is None:
        return None if kind in KINDS else f"unknown server {kind!r}"
    try:  # importing in the parent costs little and catches a half-written adapter early
        importlib.import_module(module)
    except Exception as exc:
        return f"{module} not importable yet ({type(exc).__name__}: {exc})"[:120]
    if kind == "anyio-trio" and importlib.util.find_spec("trio") is None:
        return "trio is not installed"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--max-size", type=int, default=256 * 1024 * 1024,
                        help="largest message accepted, in octets (the memory test sends 100 MiB)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the main thread under cProfile and write the stats to FILE when "
                             "stdin closes (single-threaded servers: asyncio, anyio, sockets)")
    args = parser.parse_args(argv)
    if not args.profile:
        KINDS[args.kind](args.max_size)
        return
    global _PROFILING  # noqa: PLW0603 (set once, before the control thread starts)
    _PROFILING = True
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        KINDS[args.kind](args.max_size)
    except KeyboardInterrupt:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
