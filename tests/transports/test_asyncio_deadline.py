"""transports.asyncio._deadline: one moved timer per connection instead of wait_for per read."""

from __future__ import annotations

import asyncio
import sys

import pytest

from transports.asyncio._deadline import ReadDeadline


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
