"""A client run for the end-to-end client benchmarks, as a child process.

``python -m benchmarks.send KIND --port PORT --count N --size OCTETS`` connects once to
127.0.0.1:PORT, sends N messages of about OCTETS octets over that one connection, quits, and
prints ``{"wall": seconds, "cpu": seconds}`` measured inside the process around the sending only
(interpreter start-up and imports excluded). KIND is a peer client (``smtplib``, ``aiosmtplib``)
or one of ours (see :data:`KINDS`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable

from .bodies import realistic_body

__all__ = ["KINDS", "OUR_KINDS", "client_missing", "main", "make_message"]

SENDER = "sender@client.example"
RECIPIENT = "rcpt@bench.example"


def make_message(size: int) -> bytes:
    """An RFC 5322 message of ``size`` octets (header fields plus a realistic body)."""
    header = (
        f"From: <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: benchmark\r\n"
        "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: <bench@client.example>\r\n\r\n"
    ).encode()
    return header + realistic_body(max(2, size - len(header)))


def send_smtplib(port: int, message: bytes, count: int) -> None:
    """Python's smtplib: one ``sendmail`` per message (smtplib never pipelines)."""
    import smtplib  # noqa: PLC0415

    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example") as client:
        for _ in range(count):
            client.sendmail(SENDER, [RECIPIENT], message)


def send_aiosmtplib(port: int, message: bytes, count: int) -> None:
    """aiosmtplib: one ``sendmail`` per message over one connection."""
    import asyncio  # noqa: PLC0415

    import aiosmtplib  # noqa: PLC0415

    async def run() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False,
                                 local_hostname="client.example")
        await client.connect()
        for _ in range(count):
            await client.sendmail(SENDER, [RECIPIENT], message)
        await client.quit()

    asyncio.run(run())


def send_esmtp_async(port: int, message: bytes, count: int) -> None:
    """Our asyncio client: ``send_message`` per message over one connection (PIPELINING and
    CHUNKING are used when the server offers them; smtp-sink offers PIPELINING)."""
    import asyncio  # noqa: PLC0415

    from transports.asyncio import Client  # noqa: PLC0415

    async def run() -> None:
        client = Client("127.0.0.1", port, local_hostname="client.example")
        await client.connect()
        for _ in range(count):
            await client.send_message(message, SENDER, [RECIPIENT])
        await client.quit()

    asyncio.run(run())


def send_esmtp_sync(port: int, message: bytes, count: int) -> None:
    """Our blocking client (``transports.sockets.Client``, also ``transports.threads.Client``)."""
    from transports.sockets import Client  # noqa: PLC0415

    client = Client("127.0.0.1", port, local_hostname="client.example")
    client.connect()
    for _ in range(count):
        client.send_message(message, SENDER, [RECIPIENT])
    client.quit()


def send_esmtp_async_batch(port: int, message: bytes, count: int) -> None:
    """Our asyncio client's ``send_many``: transactions pipelined across messages (RFC 2920
    §3.1, up to 8 unanswered), one connection."""
    import asyncio  # noqa: PLC0415

    from transports.asyncio import Client  # noqa: PLC0415

    async def run() -> None:
        client = Client("127.0.0.1", port, local_hostname="client.example")
        await client.connect()
        items = [(message, SENDER, [RECIPIENT])] * count
        results = await client.send_many(items)
        assert not any(isinstance(r, Exception) for r in results)
        await client.quit()

    asyncio.run(run())


def send_esmtp_sync_batch(port: int, message: bytes, count: int) -> None:
    """Our blocking client's ``send_many`` (pipelined across messages, as above)."""
    from transports.sockets import Client  # noqa: PLC0415

    client = Client("127.0.0.1", port, local_hostname="client.example")
    client.connect()
    results = client.send_many([(message, SENDER, [RECIPIENT])] * count)
    assert not any(isinstance(r, Exception) for r in results)
    client.quit()


#: KIND -> function(port, message, count).
KINDS: dict[str, Callable[[int, bytes, int], None]] = {
    "smtplib": send_smtplib,
    "aiosmtplib": send_aiosmtplib,
    "esmtp-async": send_esmtp_async,
    "esmtp-sync": send_esmtp_sync,
    "esmtp-async-batch": send_esmtp_async_batch,
    "esmtp-sync-batch": send_esmtp_sync_batch,
}
_MODULES = {
    "esmtp-async": "transports.asyncio",
    "esmtp-sync": "transports.sockets",
    "esmtp-async-batch": "transports.asyncio",
    "esmtp-sync-batch": "transports.sockets",
}
#: Imported before the clock starts (the functions import lazily so that a child loads only
#: what it runs; a first import inside the timed loop would cost ~100 ms, 0.5 ms per message
#: over 200 messages).
_PRELOAD = {
    "smtplib": ("smtplib",),
    "aiosmtplib": ("asyncio", "aiosmtplib"),
    "esmtp-async": ("asyncio", "transports.asyncio"),
    "esmtp-sync": ("transports.sockets",),
    "esmtp-async-batch": ("asyncio", "transports.asyncio"),
    "esmtp-sync-batch": ("transports.sockets",),
}

#: Our clients, as KIND -> the name shown in the tables.
OUR_KINDS: dict[str, str] = {
    "esmtp-async": "esmtp asyncio client",
    "esmtp-sync": "esmtp sync client (sockets)",
    "esmtp-async-batch": "esmtp asyncio client, batch",
    "esmtp-sync-batch": "esmtp sync client, batch",
}


def client_missing(kind: str) -> str | None:
    """Why client KIND cannot run here (not written yet), or None."""
    module = _MODULES.get(kind)
    if module is None:
        return None if kind in KINDS else f"unknown client {kind!r}"
    try:  # importing in the parent costs little and catches a half-written adapter early
        importlib.import_module(module)
    except Exception as exc:
        return f"{module} not importable yet ({type(exc).__name__}: {exc})"[:120]
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.send")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args(argv)
    message = make_message(args.size)
    for module in _PRELOAD[args.kind]:
        importlib.import_module(module)
    wall, cpu = time.perf_counter(), time.process_time()
    KINDS[args.kind](args.port, message, args.count)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sys.stdout.write(json.dumps({"wall": wall, "cpu": cpu, "octets": len(message)}) + "\n")


if __name__ == "__main__":
    main()
