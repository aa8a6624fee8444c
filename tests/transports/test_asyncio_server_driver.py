"""transports._driver as the asyncio server drives it: hooks left at their defaults are applied
inline (no coroutine, no worker thread), overrides are always called, and the ``*_nowait`` /
``resume()`` split gives the same session as the coroutine methods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from esmtp_core import MailParams, Reply, ServerConfig
from transports._base import ServerOptions
from transports._driver import AsyncServerDriver, SyncServerDriver
from transports.handler import AsyncHandler, Envelope, Handler, MessageResult, Session

OPTIONS = ServerOptions(config=ServerConfig(hostname="mx.test"))
TRANSACTION = (
    b"EHLO client.test\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"RCPT TO:<b@example.net>\r\n",
    b"DATA\r\n",
    b"Subject: t\r\n\r\nbody\r\n.\r\n",
    b"RSET\r\n",
    b"QUIT\r\n",
)


def offloaded_session(handler: Handler | AsyncHandler) -> tuple[list[str], bytes]:
    """Run TRANSACTION through an AsyncServerDriver; return the hooks that went through
    ``offload`` (a sync handler's real calls) and everything the server sent."""
    names: list[str] = []

    async def offload(function: Callable[[], object]) -> object:
        names.append(function.func.__name__)  # type: ignore[attr-defined]
        return function()

    async def main() -> bytes:
        driver = AsyncServerDriver(handler, OPTIONS, offload=offload)
        await driver.start()
        sent = driver.data_to_send()
        for line in TRANSACTION:
            await driver.receive(line)
            sent += driver.data_to_send()
        await driver.finish()
        return sent

    return names, asyncio.run(main())


def reply_codes(sent: bytes) -> list[int]:
    return [int(line[:3]) for line in sent.split(b"\r\n") if line[3:4] == b" "]


EXPECTED_CODES = [220, 250, 250, 250, 354, 250, 250, 221]


def test_a_handler_with_no_overrides_costs_no_call() -> None:
    names, sent = offloaded_session(Handler())
    assert names == []
    assert reply_codes(sent) == EXPECTED_CODES


class MessageOnly(Handler):
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    def message(self, session: Session, envelope: Envelope, content: bytes) -> MessageResult:
        self.contents.append(content)
        return None


def test_overriding_message_keeps_the_default_message_end_that_calls_it() -> None:
    handler = MessageOnly()
    names, sent = offloaded_session(handler)
    assert names == ["message_end"]
    assert handler.contents == [b"Subject: t\r\n\r\nbody\r\n"]
    assert reply_codes(sent) == EXPECTED_CODES


def test_an_override_on_the_instance_is_called() -> None:
    handler = Handler()
    refused: list[str] = []

    def mail(session: Session, address: str, params: MailParams) -> Reply | None:
        refused.append(address)
        return Reply.make(550, "5.7.1", "Not from you")

    handler.mail = mail  # type: ignore[method-assign]
    names, sent = offloaded_session(handler)
    assert names == ["mail"]
    assert refused == ["a@example.org"]
    assert 550 in reply_codes(sent)


def test_a_base_hook_patched_at_run_time_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def reset(self: Handler, session: Session) -> None:
        calls.append("reset")

    monkeypatch.setattr(Handler, "reset", reset)
    names, _ = offloaded_session(Handler())
    assert names == ["reset"]
    assert calls == ["reset"]


class AsyncMessageParts(AsyncHandler):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
        self.calls.append("message_data")

    async def message_end(self, session: Session, envelope: Envelope) -> MessageResult:
        self.calls.append("message_end")
        return Reply.make(554, "5.6.0", "No thanks")


def test_nowait_stops_only_at_overridden_async_hooks() -> None:
    handler = AsyncMessageParts()

    async def main() -> list[bool]:
        driver = AsyncServerDriver(handler, OPTIONS)
        stops = [driver.start_nowait()]
        for line in TRANSACTION[:5]:
            done = driver.receive_nowait(line)
            stops.append(done)
            if not done:
                assert driver.awaiting
                await driver.resume()
                assert not driver.awaiting
        assert b"554 5.6.0" in driver.data_to_send()
        stops.append(driver.finish_nowait())
        return stops

    # Greeting, EHLO, MAIL, RCPT and DATA need nothing; the body stops at message_data.
    assert asyncio.run(main()) == [True, True, True, True, True, False, True]
    assert handler.calls == ["message_data", "message_end"]


def test_sync_driver_skips_defaults_and_calls_overrides() -> None:
    handler = MessageOnly()
    driver = SyncServerDriver(handler, OPTIONS)
    driver.start()
    sent = driver.data_to_send()
    for line in TRANSACTION:
        driver.receive(line)
        sent += driver.data_to_send()
    driver.finish()
    assert reply_codes(sent) == EXPECTED_CODES
    assert handler.contents == [b"Subject: t\r\n\r\nbody\r\n"]


def test_a_failing_override_still_answers_451(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(AsyncHandler):
        async def rcpt(self, *args: Any) -> Reply | None:
            raise RuntimeError("lookup down")

    async def main() -> bytes:
        driver = AsyncServerDriver(Failing(), OPTIONS)
        await driver.start()
        for line in TRANSACTION[:3]:
            await driver.receive(line)
        return driver.data_to_send()

    assert b"451 4.3.0" in asyncio.run(main())
    assert "rcpt() raised" in caplog.text
