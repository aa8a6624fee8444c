"""The anyio server's own I/O paths (raw socket, one timer per session; see
``transports/anyio/_server.py``): a session busy for longer than the command timeout is not cut,
an idle one is cut one timeout after its last reply, and replies the client does not read yet
queue up in order (or end the session once the command timeout passes)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time

import anyio
import pytest
from _transport_harness import WAIT, RawPeer, Recorder, run_server

from esmtp_core import Reply
from transports.anyio import Server
from transports.handler import AsyncHandler, Envelope, Session

ANYIO_ADAPTERS = ["anyio-asyncio", "anyio-trio"]


@pytest.fixture(params=ANYIO_ADAPTERS)
def anyio_adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _open(peer: RawPeer) -> None:
    assert peer.reply()[0] == 220
    assert peer.command(b"EHLO client.test\r\n")[0] == 250


def _small_window_peer(host: str, port: int) -> socket.socket:
    """A client socket with a tiny receive buffer, so that unread replies fill it quickly."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(WAIT)
    sock.connect((host, port))
    return sock


def test_busy_session_outlives_the_timer_then_idles_out(
    anyio_adapter: str, recorder: Recorder
) -> None:
    """The session's timer is set once and goes off one timeout after that; commands in the
    meantime moved the deadline on, so it is set again instead of cutting the session. Once
    the client falls silent, 421 comes one timeout after the last reply, not earlier."""
    timeout = 0.4
    with run_server(anyio_adapter, recorder, timeout=timeout) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        started = time.monotonic()
        while time.monotonic() - started < 3.5 * timeout:
            time.sleep(timeout / 3)
            assert peer.command(b"NOOP\r\n")[0] == 250
        last_reply = time.monotonic()
        code, text = peer.reply()
        silent = time.monotonic() - last_reply
        assert (code, text[:5]) == (421, "4.4.2")
        assert timeout * 0.9 <= silent < timeout + 2.0
        assert peer.at_eof()
        peer.close()


class _LongVerify(AsyncHandler):
    """VRFY answered with a long multi-line reply naming the argument (about 40 KiB)."""

    async def verify(self, session: Session, argument: str) -> Reply | None:
        return Reply.make(252, "2.5.0", *(["x" * 400] * 99), f"checked {argument}")


def test_unread_replies_queue_in_order(anyio_adapter: str) -> None:
    """Pipelined commands whose replies overflow the socket buffers (about 12 MiB of replies):
    the server waits for the client to read, without reading more meanwhile, and every reply
    arrives whole and in order."""
    count = 300
    lines = b"".join(b"VRFY user%d\r\n" % index for index in range(count))
    with run_server(anyio_adapter, _LongVerify()) as running:
        sock = _small_window_peer(running.host, running.port)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sender = threading.Thread(target=sock.sendall, args=(lines + b"QUIT\r\n",), daemon=True)
        sender.start()
        time.sleep(0.3)  # let the replies back up before anything is read
        for index in range(count):
            while (line := reader.readline()).startswith(b"252-"):
                pass
            assert line == b"252 2.5.0 checked user%d\r\n" % index
        assert reader.readline().startswith(b"221 ")
        sender.join(WAIT)
        assert not sender.is_alive()
        reader.close()
        sock.close()


def test_client_that_never_reads_is_dropped(anyio_adapter: str, recorder: Recorder) -> None:
    """A reply that cannot be written within the command timeout ends the session (no 421 can
    get through a full buffer): the connection's resources do not wait for ever."""
    timeout = 0.4
    with run_server(anyio_adapter, recorder, timeout=timeout) as running:
        sock = _small_window_peer(running.host, running.port)
        sock.setblocking(False)
        started = time.monotonic()
        sent_total = 0
        chunk = b"VRFY somebody-with-a-long-name\r\n" * 256
        # Keep the server busy writing replies nobody reads, until it stops reading too.
        while time.monotonic() - started < 1.0:
            try:
                sent_total += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except ConnectionError:
                break  # already dropped
        assert sent_total > 0
        recorder.wait_for(lambda: recorder.disconnects == 1, timeout=timeout + 5.0)
        assert time.monotonic() - started < timeout + 6.0
        sock.close()


class _SlowHandler(AsyncHandler):
    """Takes longer over each message than the command timeout allows a silent client."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages = 0

    async def message(self, session: Session, envelope: Envelope, content: bytes) -> None:
        await anyio.sleep(self.delay)
        self.messages += 1


def test_a_handler_slower_than_the_timeout_is_not_cut(anyio_adapter: str) -> None:
    """Handler calls run without a deadline: the session's timer is off while one is suspended
    (switched only for calls that suspend), and set again for the reply and the next read."""
    timeout = 0.3
    handler = _SlowHandler(delay=3 * timeout)
    with run_server(anyio_adapter, handler, timeout=timeout) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        for index in range(2):
            assert peer.command(b"MAIL FROM:<a@example.org>\r\n")[0] == 250
            assert peer.command(b"RCPT TO:<b@example.net>\r\n")[0] == 250
            assert peer.command(b"DATA\r\n")[0] == 354
            assert peer.command(b"Subject: %d\r\n\r\nbody\r\n.\r\n" % index)[0] == 250
        assert handler.messages == 2
        last_reply = time.monotonic()
        code, text = peer.reply()  # then silence: cut one timeout after the last reply
        assert (code, text[:5]) == (421, "4.4.2")
        assert timeout * 0.9 <= time.monotonic() - last_reply < timeout + 2.0
        peer.close()


#: The flooding client, in a process of its own (in this process it would share the GIL with
#: the server's thread and rarely keep the socket full): opens a transaction, then sends DATA
#: body lines as fast as it can until its stdin closes (at most 8 s).
_FLOOD = """
import select, socket, sys, time
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
file = sock.makefile("rb")
def reply():
    while (line := file.readline())[3:4] == b"-":
        pass
    return line[:3]
assert reply() == b"220"
for command, code in ((b"EHLO flood.test", b"250"), (b"MAIL FROM:<a@example.org>", b"250"),
                      (b"RCPT TO:<b@example.net>", b"250"), (b"DATA", b"354")):
    sock.sendall(command + b"\\r\\n")
    assert reply() == code, command
print("flooding", flush=True)
sock.setblocking(False)
chunk = (b"x" * 998 + b"\\r\\n") * 1024
deadline = time.monotonic() + 8.0
while time.monotonic() < deadline and not select.select([sys.stdin], [], [], 0)[0]:
    try:
        for _ in range(16):
            sock.send(chunk)
    except BlockingIOError:
        select.select([sys.stdin], [sock], [], 1.0)  # on as soon as there is room
    except OSError:
        break
"""


class _BusyReader(AsyncHandler):
    """Works on every piece of a body without ever suspending (so the server reads slower
    than a flooding client sends, and its reads never find the socket empty)."""

    def __init__(self) -> None:
        self.busy = True

    async def message_data(self, session: Session, envelope: Envelope, data: bytes) -> None:
        if self.busy:
            time.sleep(0.05)  # stands for work that does not yield to the event loop


def test_a_client_that_never_stops_sending_does_not_starve_others(anyio_adapter: str) -> None:
    """One client streams a DATA body faster than the server takes it, so the server's reads of
    it never have to wait; every read still comes after a turn of the event loop, so another
    client is accepted and answered meanwhile."""
    handler = _BusyReader()
    with run_server(anyio_adapter, handler) as running:
        flood = subprocess.Popen(
            [sys.executable, "-c", _FLOOD, running.host, str(running.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert flood.stdout is not None
            assert flood.stdout.readline() == b"flooding\n"
            time.sleep(0.2)  # the flood is under way (nothing to wait on from out here)
            started = time.monotonic()
            other = RawPeer(running.host, running.port)
            _open(other)
            for _ in range(3):
                assert other.command(b"NOOP\r\n")[0] == 250
            answered = time.monotonic() - started
            flooding = flood.poll() is None
            other.close()
        finally:
            handler.busy = False  # the rest of the flood goes quickly
            assert flood.stdin is not None
            flood.stdin.close()
            flood.wait(WAIT)
        assert flooding
        assert answered < 2.0


class _StuckHandler(AsyncHandler):
    """Accepts the envelope, then never finishes with the message."""

    async def message(self, session: Session, envelope: Envelope, content: bytes) -> None:
        await anyio.sleep_forever()


def test_shutdown_cancels_a_handler_that_never_returns(anyio_adapter: str) -> None:
    """A handler call runs outside the session's timer but inside the connection's scope: once
    the shutdown's grace time is over, it is cancelled and the connection closed."""
    with run_server(anyio_adapter, _StuckHandler()) as running:
        peer = RawPeer(running.host, running.port)
        _open(peer)
        assert peer.command(b"MAIL FROM:<a@example.org>\r\n")[0] == 250
        assert peer.command(b"RCPT TO:<b@example.net>\r\n")[0] == 250
        assert peer.command(b"DATA\r\n")[0] == 354
        peer.send(b"Subject: stuck\r\n\r\nbody\r\n.\r\n")
        time.sleep(0.2)  # the handler is awaited by now (nothing to wait on from out here)
        started = time.monotonic()
        running.begin_shutdown(0.3).result(WAIT)  # type: ignore[union-attr]
        assert time.monotonic() - started < 5.0
        assert peer.reply()[0] in (0, 421)  # closed (or told so) without an answer for the message
        peer.close()


def test_tls_session_keeps_going_then_idles_out(
    anyio_adapter: str, recorder: Recorder, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> None:
    """Over TLS every read has its own deadline (a TLS read or write cannot be resumed once
    cancelled): a busy session is not cut, an idle one gets 421 one timeout after its last
    reply, over TLS."""
    timeout = 0.4
    with run_server(
        anyio_adapter, recorder, timeout=timeout, tls_context=server_tls, implicit_tls=True
    ) as running:
        raw = socket.create_connection((running.host, running.port), timeout=WAIT)
        with client_tls.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            reader = tls.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            started = time.monotonic()
            while time.monotonic() - started < 3 * timeout:
                time.sleep(timeout / 3)
                tls.sendall(b"NOOP\r\n")
                assert reader.readline().startswith(b"250 ")
            last_reply = time.monotonic()
            line = reader.readline()
            silent = time.monotonic() - last_reply
            assert line.startswith(b"421 4.4.2")
            assert timeout * 0.9 <= silent < timeout + 2.0
            reader.close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_shutdown_before_the_acceptors_ran(backend: str) -> None:
    """A signal right at start-up: the listening sockets are closed before the accepting tasks
    first run, and they must end quietly, not wait on a closed descriptor."""

    async def main() -> None:
        with anyio.fail_after(WAIT):
            server = Server(Recorder(), host="127.0.0.1", port=0)
            await server.start()
            async with anyio.create_task_group() as group:
                group.start_soon(server.serve_forever)
                await server.shutdown(1.0)  # no checkpoint before: nothing else has run yet

    anyio.run(main, backend=backend)
