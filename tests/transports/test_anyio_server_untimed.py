"""The anyio server's way of awaiting handler calls outside the session timer
(``transports/anyio/_untimed.py``), on both anyio backends: the timer is switched only for a
call that suspends, switched off before the event loop runs, and a cancellation still reaches
the call."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import pytest

from transports.anyio._untimed import run_untimed

BACKENDS = ["asyncio", "trio"]


class _Switches:
    """Records the timer switching, and what the call saw of it."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def off(self) -> None:
        self.log.append("off")

    def on(self) -> None:
        self.log.append("on")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_call_that_never_suspends_leaves_the_timer_alone(backend: str) -> None:
    async def call(switches: _Switches) -> None:
        switches.log.append("ran")

    async def main() -> None:
        switches = _Switches()
        await run_untimed(call(switches), switches.off, switches.on)
        assert switches.log == ["ran"]

    anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_suspending_call_runs_with_the_timer_off(backend: str) -> None:
    """The timer is switched off before the first suspension hands control to the event loop
    (a deadline already past then cancels nothing), and on again once the call returned."""

    async def call(switches: _Switches) -> None:
        switches.log.append("before")
        await anyio.sleep(0.05)  # longer than the timer left below
        await anyio.lowlevel.checkpoint()
        switches.log.append("after")

    async def main() -> None:
        switches = _Switches()
        with anyio.CancelScope(deadline=anyio.current_time() + 0.01) as timer:

            def off() -> None:
                switches.off()
                timer.deadline = math.inf

            await run_untimed(call(switches), off, switches.on)
        assert not timer.cancel_called
        assert switches.log == ["before", "off", "after", "on"]

    anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_call_raises_and_leaves_the_timer_off(backend: str) -> None:
    async def call() -> None:
        await anyio.lowlevel.checkpoint()
        raise LookupError("boom")

    async def main() -> None:
        switches = _Switches()
        with pytest.raises(LookupError, match="boom"):
            await run_untimed(call(), switches.off, switches.on)
        assert switches.log == ["off"]

    anyio.run(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cancellation_reaches_the_suspended_call(backend: str) -> None:
    """A scope around the call (a shutdown) still cancels it: the call sees the cancellation
    (its cleanup runs) and the scope catches it."""

    async def call(switches: _Switches) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            switches.log.append("cleaned up")

    async def main() -> None:
        switches = _Switches()
        with anyio.CancelScope() as outer:
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_soon, outer)
                await run_untimed(call(switches), switches.off, switches.on)
        assert outer.cancelled_caught
        assert switches.log == ["off", "cleaned up"]

    anyio.run(main, backend=backend)


async def _cancel_soon(scope: anyio.CancelScope) -> None:
    await anyio.sleep(0.01)
    scope.cancel()
