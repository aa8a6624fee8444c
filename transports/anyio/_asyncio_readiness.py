"""On the asyncio backend only: read a socket's next bytes without registering it anew.

:func:`anyio.wait_readable` on asyncio adds the descriptor to the event loop's selector and
removes it again on every call: two ``epoll_ctl`` system calls plus the selector's bookkeeping
per read, the largest item of ``python -m benchmarks.profile server anyio-asyncio`` after the
socket calls themselves. :class:`ReadWatch` keeps the descriptor registered between reads, and
reads in the loop's callback, handing the bytes to the waiting task: read before the loop looks
again, they are not reported a second time. (On trio, :func:`anyio.wait_readable` already
re-arms a registration that stays, with one ``EPOLL_CTL_MOD``.)

Bytes that arrive while nobody waits for them (a pipelining client, a handler running) stay in
the socket: the watch stops watching until the next read, so a level-triggered selector never
makes the loop spin on them and the socket buffer keeps pushing back on the client.

Only public asyncio API is used: ``loop.add_reader``, ``loop.remove_reader``, futures.
"""

from __future__ import annotations

import asyncio
import socket

__all__ = ["ReadWatch", "checkpoint", "running_asyncio"]


def running_asyncio() -> bool:
    """True when the caller runs on an asyncio event loop that supports ``add_reader`` (not
    the Windows proactor loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False  # trio
    return not isinstance(loop, getattr(asyncio, "ProactorEventLoop", ()))


async def checkpoint() -> None:
    """One turn of the event loop (what ``anyio.lowlevel.checkpoint`` does on asyncio, without
    looking the backend up on every call)."""
    await asyncio.sleep(0)


class ReadWatch:
    """One socket read through the running asyncio loop (see the module docs).

    One reader at a time (the connection's task); call :meth:`close` before the socket is
    closed or handed to another owner.
    """

    __slots__ = ("_fd", "_loop", "_registered", "_size", "_sock", "_waiter")

    def __init__(self, sock: socket.socket, size: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._fd = sock.fileno()
        self._size = size
        self._waiter: asyncio.Future[bytes] | None = None
        self._registered = False

    async def receive(self) -> bytes:
        """The next bytes, at most ``size`` (``b""``: the client closed, or reset the
        connection). Cancelling the waiting task (an anyio cancel scope) interrupts it; bytes
        already taken are never lost that way, because anyio does not cancel a task whose
        future is already done (they are returned, the cancellation comes at the next await).
        """
        waiter: asyncio.Future[bytes] = self._loop.create_future()
        self._waiter = waiter
        if not self._registered:
            self._loop.add_reader(self._fd, self._ready)
            self._registered = True
        try:
            return await waiter
        finally:
            self._waiter = None

    def _ready(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for yet (pipelined, or arriving while a handler runs): leave
            # them in the socket and stop watching until the next receive().
            self.close()
            return
        try:
            data = self._sock.recv(self._size)
        except (BlockingIOError, InterruptedError):
            return  # a spurious report
        except OSError:
            data = b""  # reset: as if it had closed
        waiter.set_result(data)

    def close(self) -> None:
        """Stop watching (idempotent)."""
        if self._registered:
            self._registered = False
            self._loop.remove_reader(self._fd)
