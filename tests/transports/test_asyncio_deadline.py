"""transports.asyncio._deadline: one moved timer per connection instead of a timer (or a
wait_for) per read: ReadDeadline for stream reads, MovingDeadline for the protocol server."""

from __future__ import annotations

import asyncio
import sys

import pytest

from transports.asyncio._deadline import MovingDeadline, ReadDeadline


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_data_in_time_is_returned() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        deadline = ReadDeadline()
        asyncio.get_running_loop().call_later(0.01, reader.feed_data, b"abc")
        assert await deadline.read(reader, 10, 1.0) == b"abc"
        reader.feed_eof()
        assert await deadline.read(reader, 10, None) == b""
        deadline.close()

    _run(main())


def test_silence_times_out_and_the_task_is_not_left_cancelled() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        deadline = ReadDeadline()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await deadline.read(reader, 10, 0.05)
        assert 0.04 <= loop.time() - started < 1
        task = asyncio.current_task()
        assert task is not None
        if sys.version_info >= (3, 11):
            assert task.cancelling() == 0  # our cancellation was taken back
        # The connection may go on reading with a fresh deadline.
        loop.call_later(0.01, reader.feed_data, b"x")
        assert await deadline.read(reader, 10, 1.0) == b"x"
        deadline.close()

    _run(main())


def test_a_later_deadline_moves_the_timer() -> None:
    """A first read arms the timer at +0.05 s; the second read (started after 0.03 s) has until
    +0.23 s: the early timer must reschedule, not cut the second read at +0.05 s."""

    async def main() -> None:
        reader = asyncio.StreamReader()
        deadline = ReadDeadline()
        loop = asyncio.get_running_loop()
        loop.call_later(0.03, reader.feed_data, b"1")
        assert await deadline.read(reader, 10, 0.05) == b"1"
        loop.call_later(0.1, reader.feed_data, b"2")
        assert await deadline.read(reader, 10, 0.2) == b"2"
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await deadline.read(reader, 10, 0.05)
        assert loop.time() - started < 1
        deadline.close()

    _run(main())


def test_an_earlier_deadline_is_not_delayed_by_the_scheduled_one() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        deadline = ReadDeadline()
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, reader.feed_data, b"1")
        assert await deadline.read(reader, 10, 30.0) == b"1"
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await deadline.read(reader, 10, 0.05)
        assert loop.time() - started < 1
        deadline.close()

    _run(main())


def test_an_outside_cancellation_stays_a_cancellation() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        deadline = ReadDeadline()
        task = asyncio.create_task(deadline.read(reader, 10, 30.0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline.close()

    _run(main())


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
