"""The anyio server's asyncio read path (``transports/anyio/_asyncio_readiness.py``) on a socket
pair: bytes come back whole, a cancelled read loses nothing, bytes nobody waits for stay in the
socket without keeping the loop busy, and EOF reads as ``b""``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from transports.anyio._asyncio_readiness import ReadWatch, checkpoint, running_asyncio


def _run(test: Callable[[socket.socket, socket.socket], Awaitable[None]]) -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)

    async def main() -> None:
        try:
            await asyncio.wait_for(test(ours, theirs), 10)
        finally:
            ours.close()
            theirs.close()

    asyncio.run(main())


def test_bytes_come_back_and_the_socket_stays_registered() -> None:
    async def test(ours: socket.socket, theirs: socket.socket) -> None:
        watch = ReadWatch(ours, 1024)
        for index in range(3):
            theirs.send(b"line %d\r\n" % index)
            assert await watch.receive() == b"line %d\r\n" % index
        # Still registered between reads (that is the point): removing it finds it there.
        assert asyncio.get_running_loop().remove_reader(ours.fileno())

    _run(test)


def test_size_bounds_one_read() -> None:
    async def test(ours: socket.socket, theirs: socket.socket) -> None:
        watch = ReadWatch(ours, 4)
        theirs.send(b"abcdefgh")
        assert await watch.receive() == b"abcd"
        assert await watch.receive() == b"efgh"
        watch.close()

    _run(test)


def test_unwanted_bytes_stay_in_the_socket_and_stop_the_watch() -> None:
    async def test(ours: socket.socket, theirs: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        watch = ReadWatch(ours, 1024)
        theirs.send(b"first")
        assert await watch.receive() == b"first"
        theirs.send(b"pipelined")  # nobody waits now
        for _ in range(5):
            await checkpoint()
        # The watch let go of the descriptor rather than be told about the bytes every turn.
        assert not loop.remove_reader(ours.fileno())
        assert await watch.receive() == b"pipelined"
        watch.close()
        watch.close()  # idempotent
        assert not loop.remove_reader(ours.fileno())

    _run(test)


def test_a_cancelled_read_loses_nothing() -> None:
    async def test(ours: socket.socket, theirs: socket.socket) -> None:
        watch = ReadWatch(ours, 1024)
        waiting = asyncio.ensure_future(watch.receive())
        await checkpoint()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        theirs.send(b"after")
        assert await watch.receive() == b"after"
        watch.close()

    _run(test)


def test_eof_reads_as_empty() -> None:
    async def test(ours: socket.socket, theirs: socket.socket) -> None:
        watch = ReadWatch(ours, 1024)
        theirs.shutdown(socket.SHUT_WR)
        assert await watch.receive() == b""
        watch.close()

    _run(test)


def test_running_asyncio() -> None:
    assert not running_asyncio()  # no loop in this thread

    async def inside() -> bool:
        return running_asyncio()

    assert asyncio.run(inside())
