"""Await a coroutine outside a timer, switching the timer off only if the coroutine suspends.

The anyio server awaits handler calls (the driver's ``resume``) without a deadline: the
session's timer must not cancel them. Switching the timer off and on again around every call
costs two cancel-scope deadline changes per message (heap or timer-handle bookkeeping in trio
and asyncio), although most handler calls return without ever suspending. A timer can only go
off while the event loop runs, that is while the task is suspended; so :func:`run_untimed`
steps the coroutine once itself, and only when it suspends does it switch the timer off before
handing the suspension to the event loop. Everything after that is passed through unchanged
(what ``await`` does), so cancellation and exceptions reach the coroutine as usual.

This relies on the plain coroutine protocol only (``send``/``throw``/``close``), which both
asyncio and trio use to drive tasks.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ["run_untimed"]


@types.coroutine
def run_untimed(
    coro: Coroutine[Any, Any, None],
    timer_off: Callable[[], None],
    timer_on: Callable[[], None],
) -> Generator[Any, Any, None]:
    """Await ``coro``; if it suspends, call ``timer_off`` first and ``timer_on`` once it has
    returned. Neither is called when it finishes without suspending; ``timer_on`` is not called
    when it raises (the caller's session ends then)."""
    try:
        request = coro.send(None)
    except StopIteration:
        return
    timer_off()
    while True:
        try:
            reply = yield request
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # a cancellation, delivered into the coroutine
            try:
                request = coro.throw(exc)
            except StopIteration:
                break
        else:
            try:
                request = coro.send(reply)
            except StopIteration:
                break
    timer_on()
