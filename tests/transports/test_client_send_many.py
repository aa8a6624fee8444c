"""``Client.send_many``: many messages over one session, pipelined across messages (RFC 2920
§3.1), against our servers (every message checked byte for byte) and Postfix's ``smtp-sink``;
the client waits on the server (reads) far less often than sending one message at a time."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from _client_harness import CLIENTS, ScriptedServer, SyncClient, open_client, scripted_server
from _transport_harness import Recorder, run_server

from esmtp_core import ClientConfig
from tests.interop.peers import make_workdir, need_program, smtp_sink
from transports.errors import (
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from transports.sockets import Client as SocketsClient
from transports.threads import Outgoing

COUNT = 30


def body(i: int) -> bytes:
    return (
        b"Subject: batch %d\r\n\r\n" % i
        + b".leading dot\r\n..two dots\r\ncaf\xc3\xa9 8-bit\r\n"
        + b"x" * (i * 37 % 500)
        + b"\r\nend %d\r\n" % i
    )


def count_reads(client: SyncClient) -> list[int]:
    """Count the reads that reach the client core (each one is a wait for the server: a round
    trip). Counted at the core's ``receive_data``, so every adapter's runner is covered as it
    runs, including the asyncio client's, which reads in its protocol callbacks."""
    inner: Any = client.client
    conn = inner._driver.conn
    original = conn.receive_data
    counter = [0]

    def counted(data: bytes) -> None:
        counter[0] += 1
        original(data)

    conn.receive_data = counted
    return counter


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_batch_against_our_server(client_kind: str, chunking: bool, recorder: Recorder) -> None:
    # Each client against the server of the same adapter (the matrix of every pair is elsewhere).
    items = [(body(i), "a@example.org", [f"r{i}@example.net"]) for i in range(COUNT)]
    items[7] = (body(7), "a@example.org", ["nobody@example.net"])  # refused at RCPT
    items[12] = (body(12), "boom@example.com", ["r12@example.net"])  # MAIL gets a 451
    items[20] = (body(20), "a@example.org", ["ü@example.net"])  # needs SMTPUTF8: off here
    config = ClientConfig(use_chunking=chunking, use_smtputf8=False)
    with (
        run_server(client_kind, recorder) as running,
        open_client(client_kind, running.host, running.port, config=config) as client,
    ):
        reads = count_reads(client)
        results = client.send_many(items, window=8)
        batch_reads = reads[0]
        reads[0] = 0
        for message, sender, rcpts in items[:10]:
            if rcpts == ["nobody@example.net"]:
                continue
            client.send_message(message, sender, rcpts)
        one_by_one = reads[0]
        assert client.noop().code == 250  # the session is still in step
    assert len(results) == COUNT
    assert isinstance(results[7], SMTPRecipientsRefused)
    assert isinstance(results[12], SMTPSenderRefused)
    assert isinstance(results[20], SMTPNotSupportedError)
    good = [i for i in range(COUNT) if i not in (7, 12, 20)]
    for i in good:
        result = results[i]
        assert not isinstance(result, Exception), (i, result)
        assert result.accepted == (f"r{i}@example.net",)
    stored = recorder.messages[: len(good)]
    assert [s.rcpt_to for s in stored] == [[f"r{i}@example.net"] for i in good]
    assert [s.content for s in stored] == [body(i) for i in good]
    # Sequentially each message costs at least one wait (two over DATA: the 354 and the end);
    # pipelined, a wait collects the replies of several transactions.
    assert one_by_one >= 9
    assert batch_reads * 9 < one_by_one * COUNT * 0.7, (batch_reads, one_by_one)


def test_batch_without_pipelining_is_one_at_a_time(recorder: Recorder) -> None:
    items = [(body(i), "a@example.org", [f"r{i}@example.net"]) for i in range(5)]
    config = ClientConfig(use_pipelining=False, use_chunking=False)
    with (
        run_server("sockets", recorder) as running,
        open_client("sockets", running.host, running.port, config=config) as client,
    ):
        reads = count_reads(client)
        results = client.send_many(items)
    assert all(not isinstance(r, Exception) and r.ok for r in results)
    assert [s.content for s in recorder.messages] == [body(i) for i in range(5)]
    assert reads[0] >= 4 * 5  # MAIL, RCPT, DATA, end of data: one wait each


def test_outgoing_items_and_email_messages(recorder: Recorder) -> None:
    message = EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "bob@example.net"
    message["Subject"] = "hi"
    message.set_content("hello\n")
    with (
        run_server("threads", recorder) as running,
        SocketsClient(running.host, running.port, timeout=10) as client,
    ):
        results = client.send_many(
            [message, Outgoing(b"raw\r\n", "c@example.org", ["d@example.net"])]
        )
        with pytest.raises(ValueError, match="sender and recipients"):
            client.send_many([b"no envelope\r\n"])
        with pytest.raises(ValueError, match="window"):
            client.send_many([message], window=0)
    assert all(not isinstance(r, Exception) for r in results)
    assert [s.rcpt_to for s in recorder.messages] == [["bob@example.net"], ["d@example.net"]]
    assert recorder.messages[1].content == b"raw\r\n"


def test_421_mid_batch_reports_every_message() -> None:
    def script(sock: socket.socket, server: ScriptedServer) -> None:
        sock.sendall(b"220 mx.test\r\n")
        server.read_until(sock, b"EHLO")
        sock.sendall(b"250-mx.test\r\n250 PIPELINING\r\n")
        server.read_until(sock, b"DATA\r\n")
        sock.sendall(b"250 ok\r\n250 ok\r\n354 go\r\n")
        # The first body, its dot and the second envelope arrive together (one flight).
        server.read_until(sock, b"r1@example.net>\r\nDATA\r\n")
        sock.sendall(b"250 first\r\n421 4.3.2 going down\r\n")
        sock.close()

    items = [(b"m%d\r\n" % i, "a@example.org", [f"r{i}@example.net"]) for i in range(5)]
    with (
        scripted_server(script) as server,
        open_client("sockets", "127.0.0.1", server.port) as client,
    ):
        # Window 2: the first two transactions are in the core when the 421 comes, the
        # other three were never queued.
        results = client.send_many(items, window=2)
    assert len(results) == 5
    first = results[0]
    assert not isinstance(first, Exception)
    assert first.ok
    assert isinstance(results[1], SMTPSenderRefused)  # the 421 answered its MAIL
    assert results[1].reply.code == 421
    for r in results[2:]:  # queued before the 421 was read: its 421; after: never sent
        assert isinstance(r, SMTPServerDisconnected) or (
            isinstance(r, SMTPSenderRefused) and r.reply.code == 421
        ), results
    assert all(isinstance(r, SMTPServerDisconnected) for r in results[3:]), results
    assert b"m0\r\n.\r\nMAIL FROM:<a@example.org>" in server.received


# --- Postfix smtp-sink --------------------------------------------------------------------------


@pytest.fixture
def work() -> Iterator[Path]:
    path = make_workdir("esmtp-batch-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_batch_against_smtp_sink(client_kind: str, work: Path) -> None:
    need_program("smtp-sink")
    items = [(body(i), "a@example.org", [f"r{i}@example.net"]) for i in range(COUNT)]
    with (
        smtp_sink(work, dump=True) as sink,
        open_client(client_kind, "127.0.0.1", sink.port, local_hostname="client.test") as client,
    ):
        assert client.capabilities.pipelining
        reads = count_reads(client)
        results = client.send_many(items, window=8)
        batch_reads = reads[0]
        reads[0] = 0
        for message, sender, rcpts in items[:10]:
            client.send_message(message, sender, rcpts)
        one_by_one = reads[0]
        captured = sink.wait_for_messages(COUNT + 10)
    assert all(not isinstance(r, Exception) and r.ok for r in results), results
    assert sorted(m.rcpt_args for m in captured) == sorted(
        [(f"<r{i}@example.net>",) for i in range(COUNT)]
        + [(f"<r{i}@example.net>",) for i in range(10)]
    )
    # smtp-sink offers no CHUNKING: one at a time costs two waits per message (the 354 and the
    # end of data); pipelined, the end-of-data reply comes with the next envelope's replies.
    assert one_by_one >= 20
    assert batch_reads * 10 < one_by_one * COUNT * 0.75, (batch_reads, one_by_one)
