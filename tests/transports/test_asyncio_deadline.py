"""transports.asyncio._deadline: one moved timer per connection (MovingDeadline) instead of a
timer (or a wait_for) per read."""

from __future__ import annotations

import asyncio

from transports.asyncio._deadline import MovingDeadline


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


class _Fired:
    """Records the loop time of each callback and wakes a waiter."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.times.append(asyncio.get_running_loop().time())
        self.event.set()


def test_moving_deadline_fires_once_when_due() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = _Fired()
        timer = MovingDeadline(loop, fired)
        due = loop.time() + 0.05
        timer.set(due)
        assert timer.deadline == due
        await asyncio.wait_for(fired.event.wait(), 5)
        assert fired.times[0] >= due - 0.01
        assert timer.deadline is None
        await asyncio.sleep(0.1)
        assert len(fired.times) == 1

    _run(main())


def test_moving_deadline_later_is_honoured_by_the_early_handle() -> None:
    """Moved later without rescheduling: the first handle fires early, finds the later
    deadline and waits for it; the callback runs once, at the later time."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = _Fired()
        timer = MovingDeadline(loop, fired)
        timer.set(loop.time() + 0.03)
        later = loop.time() + 0.15
        timer.set(later)
        await asyncio.wait_for(fired.event.wait(), 5)
        assert fired.times[0] >= later - 0.01
        await asyncio.sleep(0.05)
        assert len(fired.times) == 1

    _run(main())


def test_moving_deadline_earlier_is_not_delayed() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = _Fired()
        timer = MovingDeadline(loop, fired)
        timer.set(loop.time() + 30)
        started = loop.time()
        timer.set(started + 0.03)
        await asyncio.wait_for(fired.event.wait(), 5)
        assert fired.times[0] - started < 1
        timer.cancel()

    _run(main())


def test_moving_deadline_cleared_or_cancelled_never_fires() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired = _Fired()
        cleared = MovingDeadline(loop, fired)
        cleared.set(loop.time() + 0.02)
        cleared.set(None)
        cancelled = MovingDeadline(loop, fired)
        cancelled.set(loop.time() + 0.02)
        cancelled.cancel()
        await asyncio.sleep(0.1)
        assert fired.times == []
        # A cleared timer can be set again.
        cleared.set(loop.time() + 0.02)
        await asyncio.wait_for(fired.event.wait(), 5)
        assert len(fired.times) == 1

    _run(main())
