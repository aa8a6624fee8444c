"""A timer that follows a moving deadline with one ``loop.call_at`` handle per connection.

An SMTP session's deadline moves with every reply (the command timeout runs from the last reply,
RFC 5321 §4.5.3.2). Wrapping every read in ``asyncio.wait_for`` (a new Task and a timer handle
per read), or cancelling and rescheduling a handle on every round trip, costs more CPU than the
protocol itself on a small-message session (see ``benchmarks/RESULTS.md``).
:class:`MovingDeadline` keeps one handle and only *records* a later deadline; the handle is
rescheduled when it fires early (the deadline moved later while it waited) or when a new deadline
is earlier than the scheduled one. It calls back when the deadline last set has really passed
(the protocol-based server and client: no task is reading, so there is nothing to cancel).

Only public asyncio API is used (``loop.call_at``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["MovingDeadline"]


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
