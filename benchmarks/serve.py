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
import json
import os
import resource
import sys
import threading
from collections.abc import Callable

__all__ = ["KINDS", "OUR_KINDS", "kind_missing", "main"]


def _control_loop() -> None:
    """Answer CPU-time queries on stdin; exit the process at EOF (the parent is done)."""
    for _line in sys.stdin:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sys.stdout.write(json.dumps({"utime": usage.ru_utime, "stime": usage.ru_stime}) + "\n")
        sys.stdout.flush()
    sys.stdout.flush()
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
# Peers and adapters are imported inside their function (noqa PLC0415): each child process
# loads only what it serves, so the RSS baseline of one is not inflated by the others.
KINDS: dict[str, Callable[[int], None]] = {
    "aiosmtpd": serve_aiosmtpd,
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
    if kind not in KINDS:
        return f"adapter {kind!r} not available yet"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--max-size", type=int, default=256 * 1024 * 1024,
                        help="largest message accepted, in octets (the memory test sends 100 MiB)")
    args = parser.parse_args(argv)
    KINDS[args.kind](args.max_size)


if __name__ == "__main__":
    main()
