"""The blocking client's socket I/O on plain TCP (``transports.sockets._client``): one system call
per write and per read (kernel-side timeouts, no poll before each call), with the same deadlines
as Python's socket timeouts: the whole write, and the whole reply."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from _client_harness import ScriptedServer, scripted_server

from transports.errors import SMTPTimeoutError
from transports.sockets import Client
from transports.sockets._client import _KERNEL_TIMEOUTS, _send_all, _timeval

needs_kernel_timeouts = pytest.mark.skipif(
    not _KERNEL_TIMEOUTS, reason="kernel-side timeouts are used on 64-bit Linux only"
)


@needs_kernel_timeouts
def test_timeval_rounds_up_and_never_means_no_timeout() -> None:
    assert struct.unpack("ll", _timeval(None)) == (0, 0)
    assert struct.unpack("ll", _timeval(1.5)) == (1, 500_000)
    assert struct.unpack("ll", _timeval(60.0)) == (60, 0)
    # zero would switch the timeout off: the smallest positive timeout is one microsecond
    assert struct.unpack("ll", _timeval(1e-9)) == (0, 1)
    assert struct.unpack("ll", _timeval(0.0000015)) == (0, 2)


@needs_kernel_timeouts
def test_send_all_times_out_for_the_whole_write() -> None:
    """A peer that never reads: the write gives up after the timeout, not never."""
    left, right = socket.socketpair()
    with left, right:
        data = b"x" * (16 * 1024 * 1024)  # far more than a socketpair's buffers
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            _send_all(left, data, 0.3)
        assert 0.25 < time.monotonic() - started < 5


@needs_kernel_timeouts
def test_send_all_delivers_everything_to_a_slow_reader() -> None:
    left, right = socket.socketpair()
    data = bytes(range(256)) * 16384  # 4 MiB: many waits for room
    received = bytearray()

    def reader() -> None:
        right.settimeout(10)
        while len(received) < len(data):
            chunk = right.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    thread = threading.Thread(target=reader, daemon=True)
    with left, right:
        thread.start()
        _send_all(left, data, 10.0)
        thread.join(10)
    assert bytes(received) == data


@needs_kernel_timeouts
def test_send_all_raises_the_connection_error() -> None:
    left, right = socket.socketpair()
    with left:
        right.close()
        with pytest.raises(OSError):
            _send_all(left, b"x" * (16 * 1024 * 1024), 5.0)


def _trickle_mail_reply(sock: socket.socket, server: ScriptedServer) -> None:
    sock.sendall(b"220 trickle.test ESMTP\r\n")
    server.read_until(sock, b"\r\n")
    sock.sendall(b"250-trickle.test\r\n250 PIPELINING\r\n")
    server.read_until(sock, b"DATA\r\n")
    # Each byte comes well within the timeout, the whole reply does not: the deadline is the
    # reply's (each read gets what is left of it), not each read's.
    for byte in b"250 2.1.0 Ok, eventually\r\n":
        if server.done.wait(0.1):
            return
        sock.sendall(bytes([byte]))


def test_a_trickled_reply_is_bounded_by_the_reply_deadline() -> None:
    with scripted_server(_trickle_mail_reply) as server:
        client = Client("127.0.0.1", server.port, timeout=0.6)
        client.connect()
        try:
            started = time.monotonic()
            with pytest.raises(SMTPTimeoutError):
                client.send_message(b"Subject: t\r\n\r\nbody\r\n", "a@example.org", ["b@x.test"])
            elapsed = time.monotonic() - started
        finally:
            client.close()
        assert 0.5 < elapsed < 2.0  # the whole reply would take 2.6 s


def _answer_slowly(sock: socket.socket, server: ScriptedServer) -> None:
    sock.sendall(b"220 slow.test ESMTP\r\n")
    server.read_until(sock, b"\r\n")
    sock.sendall(b"250-slow.test\r\n250 PIPELINING\r\n")
    server.read_until(sock, b"NOOP\r\n")
    if not server.done.wait(0.3):  # slower than nothing, faster than the timeout
        sock.sendall(b"250 2.0.0 Ok\r\n")


def test_a_reply_within_the_timeout_is_waited_for() -> None:
    with scripted_server(_answer_slowly) as server:
        client = Client("127.0.0.1", server.port, timeout=5.0)
        client.connect()
        try:
            assert client.noop().code == 250
        finally:
            client.close()
