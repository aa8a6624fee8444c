"""Timers that follow a moving deadline with one ``loop.call_at`` handle per connection.

An SMTP session's deadline moves with every reply (the command timeout runs from the last reply,
RFC 5321 §4.5.3.2). Wrapping every read in ``asyncio.wait_for`` (a new Task and a timer handle
per read), or cancelling and rescheduling a handle on every round trip, costs more CPU than the
protocol itself on a small-message session (see ``benchmarks/RESULTS.md``). Both classes here
keep one handle and only *record* a later deadline; the handle is rescheduled when it fires early
(the deadline moved later while it waited) or when a new deadline is earlier than the scheduled
one.

* :class:`MovingDeadline` calls back when the deadline last set has really passed (the
  protocol-based server and client: no task is reading).
* :class:`ReadDeadline` bounds ``StreamReader`` reads: when a read is still waiting at its
  deadline, the reading task is cancelled and the read raises :class:`TimeoutError`
  (``asyncio.TimeoutError`` on 3.10), exactly what ``wait_for`` raised. (It served the
  streams-based client; the client now runs its own protocol, whose reads a
  :class:`MovingDeadline` bounds, so no adapter uses it at present.)

Only public asyncio API is used (``loop.call_at``, ``Task.cancel``; ``Task.uncancel`` on 3.11+).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

__all__ = ["MovingDeadline", "ReadDeadline"]


class MovingDeadline:
    """One connection's timer (see the module docs): ``callback()`` runs when the deadline set
    last (loop time, as ``loop.time()``) passes. Call :meth:`cancel` when the connection ends so
    that no handle outlives it."""

    __slots__ = ("_callback", "_deadline", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: float | None = None

    @property
    def deadline(self) -> float | None:
        """The loop time the callback is due at, or None when none is set."""
        return self._deadline

    def set(self, deadline: float | None) -> None:
        """Run the callback at loop time ``deadline`` (replacing any earlier setting); None
        clears it. Moving it later costs no rescheduling until the scheduled handle fires."""
        self._deadline = deadline
        if deadline is None:
            return  # a scheduled handle finds no deadline when it fires and does nothing
        handle = self._handle
        if handle is None or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._handle = self._loop.call_at(deadline, self._fire)

    def cancel(self) -> None:
        """Clear the deadline and drop the handle."""
        self._deadline = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        handle, self._handle = self._handle, None
        deadline = self._deadline
        if deadline is None:
            return
        if handle is not None and deadline > handle.when():
            # The deadline moved later while this handle waited. (Compared with the handle's
            # time, not the clock: the loop runs a handle up to its clock resolution early.)
            self._handle = self._loop.call_at(deadline, self._fire)
            return
        self._deadline = None
        self._callback()


class ReadDeadline:
    """One connection's read timer (see the module docs). Create it in a running loop; call
    :meth:`close` when the connection ends so no timer outlives it.

    Not re-entrant: one read at a time (each connection reads from one task at a time).
    """

    __slots__ = ("_deadline", "_fired", "_handle", "_loop", "_task")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        #: The reading task while a bounded read waits, else None.
        self._task: asyncio.Task[object] | None = None
        self._deadline = 0.0
        self._fired = False

    async def read(self, reader: asyncio.StreamReader, size: int, timeout: float | None) -> bytes:
        """``reader.read(size)``, raising ``TimeoutError`` when nothing came within ``timeout``
        seconds (None: wait for ever)."""
        if timeout is None:
            return await reader.read(size)
        loop = self._loop
        deadline = loop.time() + timeout
        self._deadline = deadline
        handle = self._handle
        if handle is None or handle.when() > deadline:
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._expire)
        task = asyncio.current_task()
        self._task = task
        self._fired = False
        try:
            return await reader.read(size)
        except asyncio.CancelledError:
            if not self._fired:
                raise
            self._fired = False
            # Python 3.11+: take back our own cancellation; one from elsewhere (a shutdown
            # cancelling this task at the same moment) stays and wins.
            if sys.version_info >= (3, 11) and task is not None and task.uncancel() > 0:
                raise
            raise asyncio.TimeoutError from None
        finally:
            self._task = None

    def _expire(self) -> None:
        handle, self._handle = self._handle, None
        task = self._task
        if task is None:
            return  # no read waiting: the next read schedules its own deadline
        if handle is not None and self._deadline > handle.when():
            # The deadline moved later while this handle waited. (Compared with the handle's
            # time, not the clock: the loop runs a handle up to its clock resolution early.)
            self._handle = self._loop.call_at(self._deadline, self._expire)
            return
        self._fired = True
        self._task = None
        task.cancel()

    def close(self) -> None:
        """Drop the timer (the connection is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._task = None
