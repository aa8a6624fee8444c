"""Minimal reproductions of bugs the hostile suite found, one test each.

A test for a bug not fixed yet is marked ``xfail(strict=True)`` with the reason: it starts to
"fail" (XPASS) the moment the fix lands, and then the marker must go. Inputs are the smallest the
fuzzer or hypothesis shrank them to.
"""

from __future__ import annotations

from esmtp_core import NEED_DATA, PAUSED, ClientConfig, ClientConnection


def _feed(conn: ClientConnection, data: bytes) -> list[object]:
    conn.receive_data(data)
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        events.append(event)


def _session(capabilities: bytes) -> ClientConnection:
    conn = ClientConnection(ClientConfig(local_hostname="c.example"))
    _feed(conn, b"220 mx.example\r\n")
    conn.ehlo()
    conn.data_to_send()
    _feed(conn, b"250-mx.example\r\n" + capabilities)
    return conn


def test_354_after_refused_mail_is_closed_with_a_dot_low_level() -> None:
    """Stateful test, shrunk: MAIL 503 (a server still holding an older transaction), RCPT 250,
    DATA 354. The client must end the data it now owes, not go idle."""
    conn = _session(b"250 8BITMIME\r\n")
    conn.mail("a@example.org")
    conn.rcpt("c@example.net")
    conn.data()
    conn.send_body(b"hello\r\n")
    conn.end_body()
    conn.data_to_send()
    for reply in (b"503 5.5.1 Sender already specified\r\n", b"250 2.1.5 Ok\r\n"):
        _feed(conn, reply)
        conn.data_to_send()
    _feed(conn, b"354 go ahead\r\n")
    assert conn.data_to_send().endswith(b".\r\n")


def test_354_after_refused_mail_is_closed_with_a_dot_pipelined() -> None:
    """The same with ``send_message`` and PIPELINING (RFC 2920): MAIL, RCPT and DATA left in
    one flight; the server answers 503, 250, 354."""
    conn = _session(b"250-PIPELINING\r\n250 SIZE 1000\r\n")
    conn.send_message("a@example.org", ["c@example.net"], b"hello\r\n")
    assert conn.data_to_send() == (
        b"MAIL FROM:<a@example.org> SIZE=7\r\nRCPT TO:<c@example.net>\r\nDATA\r\n"
    )
    _feed(conn, b"503 5.5.1 Sender already specified\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
    assert conn.data_to_send().endswith(b".\r\n")
