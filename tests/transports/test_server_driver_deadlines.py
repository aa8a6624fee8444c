"""The server driver's clocks (RFC 5321 §4.5.3.2): the DATA total time runs only while a body
is coming, never after a message that arrived whole with its DATA command."""

from __future__ import annotations

from transports._base import ServerOptions
from transports._driver import SyncServerDriver
from transports.handler import Handler


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _session(clock: _Clock) -> SyncServerDriver:
    driver = SyncServerDriver(Handler(), ServerOptions(timeout=300.0, data_timeout=60.0),
                              clock=clock)
    driver.start()
    driver.data_to_send()
    for line in (b"EHLO client.example\r\n", b"MAIL FROM:<a@example.org>\r\n",
                 b"RCPT TO:<b@example.net>\r\n"):
        driver.receive(line)
        assert driver.data_to_send().startswith(b"250")
    return driver


def test_the_data_clock_runs_from_the_354_while_the_body_comes() -> None:
    clock = _Clock()
    driver = _session(clock)
    driver.receive(b"DATA\r\n")
    assert driver.data_to_send().startswith(b"354")
    assert driver.read_timeout() == 60.0
    clock.now += 50.0
    driver.receive(b"Subject: slow\r\n\r\nbody\r\n")  # progress moves the command clock only
    assert driver.read_timeout() == 10.0
    driver.receive(b".\r\n")
    assert driver.data_to_send().startswith(b"250")
    assert driver.read_timeout() == 300.0  # the message is over: the command timeout again


def test_a_body_sent_with_its_data_command_leaves_no_data_clock_behind() -> None:
    # A client that does not wait for the 354 (RFC 2920 §3.1 says it must) sends the whole
    # message in one write: the 354 and the 250 leave together, and the session that follows
    # is idle under the command timeout, not under the DATA time of a message already over.
    clock = _Clock()
    driver = _session(clock)
    driver.receive(b"DATA\r\nSubject: eager\r\n\r\nbody\r\n.\r\n")
    replies = driver.data_to_send()
    assert replies.startswith(b"354")
    assert b"\r\n250 " in replies
    assert driver.read_timeout() == 300.0
    clock.now += 120.0  # beyond the DATA time, within the command timeout
    assert driver.read_timeout() == 180.0
    driver.receive(b"NOOP\r\n")
    assert driver.data_to_send().startswith(b"250")
    assert not driver.closed
