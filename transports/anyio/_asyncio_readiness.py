"""On the asyncio backend only: wait for a socket's next bytes without registering it anew.

:func:`anyio.wait_readable` on asyncio adds the descriptor to the event loop's selector and
removes it again on every call: two ``epoll_ctl`` system calls plus the selector's bookkeeping
per read, the largest item of ``python -m benchmarks.profile server anyio-asyncio`` after the
socket calls themselves. :class:`ReadWatch` keeps the descriptor registered between reads and
only wakes the waiting task. (On trio, :func:`anyio.wait_readable` already re-arms a
registration that stays, with one ``EPOLL_CTL_MOD``.)

A level-triggered selector keeps reporting bytes that nobody reads yet; the watch stops watching
after the second such report without a waiter (the first one is normal: the loop reports the
bytes once more in the turn in which the woken task reads them), so a connection whose task is
busy elsewhere (a handler in a worker thread) never makes the loop spin.

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
    """One socket watched for reading by the running asyncio loop (see the module docs).

    One waiter at a time (the connection's task); call :meth:`close` before the socket is
    closed or handed to another owner.
    """

    __slots__ = ("_fd", "_loop", "_registered", "_unwanted", "_waiter")

    def __init__(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd = sock.fileno()
        self._waiter: asyncio.Future[None] | None = None
        self._registered = False
        #: Reports of readable bytes with no task waiting for them, since the last wait.
        self._unwanted = 0

    async def wait(self) -> None:
        """Return once the socket has bytes to read (or an error or EOF to report). Cancelling
        the waiting task (an anyio cancel scope) interrupts it."""
        waiter = self._loop.create_future()
        self._waiter = waiter
        self._unwanted = 0
        if not self._registered:
            self._loop.add_reader(self._fd, self._ready)
            self._registered = True
        try:
            await waiter
        finally:
            self._waiter = None

    def _ready(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        self._unwanted += 1
        if self._unwanted > 1:
            self.close()  # the next wait() registers again

    def close(self) -> None:
        """Stop watching (idempotent)."""
        if self._registered:
            self._registered = False
            self._loop.remove_reader(self._fd)
