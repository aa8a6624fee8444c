"""Pure parts of the clients (``transports._client_values`` and the driver): message preparation
(as smtplib.send_message), option validation, the default EHLO name, SendResult, the
close-or-keep decision, the reply deadline, the batch's flush order and how I/O errors are
translated."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from email.message import EmailMessage, Message

import pytest

from esmtp_core import Reply, TransactionResult
from transports._client_base import Step, io_errors
from transports._client_driver import ClientDriver, Want, must_close
from transports._client_values import (
    ClientOptions,
    SendResult,
    default_local_hostname,
    prepare_message,
)
from transports.errors import (
    SMTPAuthenticationError,
    SMTPClientError,
    SMTPConnectionError,
    SMTPNotSupportedError,
    SMTPReplyError,
    SMTPTimeoutError,
)
from transports.sockets._client import _set_timeout

OK = Reply.make(250, "2.0.0", "Ok")
NO = Reply.make(550, "5.1.1", "No such user")


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.org>"
    message["To"] = "Bob <bob@example.net>, carol@example.net"
    message["Cc"] = "dave@example.net"
    message["Bcc"] = "eve@example.net"
    message["Subject"] = "prepared"
    message.set_content("line\n")
    return message


def test_envelope_from_headers_and_bcc_stripped() -> None:
    message = _message()
    sender, recipients, data = prepare_message(message, None, None)
    assert sender == "alice@example.org"
    assert recipients == [
        "bob@example.net",
        "carol@example.net",
        "dave@example.net",
        "eve@example.net",
    ]
    assert b"Bcc" not in data
    assert b"eve@example.net" not in data
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert message["Bcc"] == "eve@example.net"  # the caller's object is untouched


def test_sender_header_and_explicit_envelope() -> None:
    message = _message()
    message["Sender"] = "secretary@example.org"
    assert prepare_message(message, None, None)[0] == "secretary@example.org"
    sender, recipients, _ = prepare_message(message, "", ["x@example.net"])
    assert (sender, recipients) == ("", ["x@example.net"])
    assert prepare_message(message, None, "one@example.net")[1] == ["one@example.net"]


def test_resent_fields() -> None:
    message = _message()
    message["Resent-Date"] = "Mon, 30 Nov 2026 10:00:00 +0000"
    message["Resent-From"] = "forwarder@example.org"
    message["Resent-To"] = "new@example.net"
    message["Resent-Bcc"] = "hidden@example.net"
    sender, recipients, data = prepare_message(message, None, None)
    assert sender == "forwarder@example.org"
    assert recipients == ["new@example.net", "hidden@example.net"]
    assert b"hidden@example.net" not in data
    message["Resent-Date"] = "Tue, 1 Dec 2026 10:00:00 +0000"
    with pytest.raises(ValueError, match="Resent"):
        prepare_message(message, None, None)


def test_international_message_uses_utf8_headers() -> None:
    message = EmailMessage()
    message["From"] = "j\u00f6ran@ex\u00e4mple.org"
    message["To"] = "zo\u00eb@example.net"
    message["Subject"] = "gr\u00fc\u00dfe"
    message.set_content("x\n")
    sender, recipients, data = prepare_message(message, None, None)
    assert (sender, recipients) == ("j\u00f6ran@ex\u00e4mple.org", ["zo\u00eb@example.net"])
    assert "Subject: gr\u00fc\u00dfe\r\n".encode() in data  # RFC 6532, not an encoded-word


def test_compat32_message_and_no_from_mangling() -> None:
    message = email.message_from_bytes(
        b"From: a@example.org\nTo: b@example.net\n\nFrom here on\n", policy=email.policy.compat32
    )
    assert isinstance(message, Message)
    _, _, data = prepare_message(message, None, None)
    assert data.endswith(b"\r\n\r\nFrom here on\r\n")  # never ">From"


def test_missing_envelope() -> None:
    with pytest.raises(ValueError, match="needs sender and recipients"):
        prepare_message(b"Subject: x\r\n\r\n", None, ["a@example.net"])
    with pytest.raises(ValueError, match="no sender"):
        prepare_message(EmailMessage(), None, ["a@example.net"])
    message = EmailMessage()
    message["From"] = "a@example.org"
    with pytest.raises(ValueError, match="no recipients"):
        prepare_message(message, None, None)
    with pytest.raises(ValueError, match="no recipients"):
        prepare_message(b"x", "a@example.org", [])
    with pytest.raises(TypeError):
        prepare_message("text is not a message", "a@example.org", ["b@example.net"])  # type: ignore[arg-type]


def test_bytes_are_untouched() -> None:
    data = b"Subject: raw\n\nbare LF \x00 kept"
    assert prepare_message(bytearray(data), "a@x.org", ("b@y.org",)) == (
        "a@x.org",
        ["b@y.org"],
        data,
    )


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="tls"):
        ClientOptions(host="h", port=25, tls="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        ClientOptions(host="h", port=25, timeout=0)
    with pytest.raises(ValueError, match="port"):
        ClientOptions(host="h", port=0)
    with pytest.raises(ValueError, match="local_hostname"):
        ClientOptions(host="h", port=25, local_hostname="bad name")
    options = ClientOptions(host="mx.example", port=465, tls="implicit", timeout=5)
    assert options.implicit_tls
    assert options.tls_hostname == "mx.example"
    assert options.open_timeout == 5
    assert options.tls_context().verify_mode.name == "CERT_REQUIRED"
    opportunistic = ClientOptions(host="mx.example", port=25, tls="starttls-opportunistic")
    assert opportunistic.tls_context().verify_mode.name == "CERT_NONE"  # RFC 7435


def test_default_local_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "box")
    assert default_local_hostname(("127.0.0.1", 5000)) == "[127.0.0.1]"
    assert default_local_hostname(("::1", 5000, 0, 0)) == "[IPv6:::1]"
    assert default_local_hostname(None) == "localhost"
    monkeypatch.setattr("socket.gethostname", lambda: "box.example.org")
    assert default_local_hostname(("127.0.0.1", 5000)) == "box.example.org"


def test_send_result() -> None:
    transaction = TransactionResult(
        sender="a@example.org",
        mail_reply=OK,
        recipient_replies=(("b@x.net", OK), ("c@x.net", NO)),
        data_replies=((None, OK),),
        recipients=("b@x.net", "c@x.net"),
    )
    result = SendResult.from_transaction(transaction)
    assert result.accepted == ("b@x.net",)
    assert result.refused == {"c@x.net": NO}
    assert not result.ok
    assert result.data_reply == OK
    # MAIL refused without PIPELINING: no RCPT was sent, every recipient gets the MAIL reply.
    refused = TransactionResult(sender="a@example.org", mail_reply=NO, recipients=("b@x.net",))
    result = SendResult.from_transaction(refused)
    assert result.refused == {"b@x.net": NO}
    assert not result.ok


def test_must_close() -> None:
    assert must_close(None, SMTPTimeoutError("slow"))
    assert must_close(None, SMTPConnectionError("gone"))
    assert must_close(None, KeyboardInterrupt())
    assert not must_close(None, SMTPReplyError(NO))
    assert not must_close(None, SMTPAuthenticationError(NO))
    assert not must_close(None, SMTPNotSupportedError("no SMTPUTF8"))
    assert not must_close(None, ValueError("no sender"))


def test_reply_deadline_spans_reads_and_restarts_after_a_write() -> None:
    """``timeout`` bounds a whole reply: reads share it until the client sends again."""
    now = [100.0]
    options = ClientOptions(host="mx.example", port=25, timeout=10)
    driver = ClientDriver(options, clock=lambda: now[0])
    steps = driver.connect()
    assert next(steps) is Want.READ  # the greeting
    assert driver.data_to_send() == b""
    assert driver.read_timeout() == 10
    now[0] += 4
    assert steps.send(b"220 mx.exa") is Want.READ  # a partial greeting: same deadline
    assert driver.read_timeout() == 6
    now[0] += 5
    assert steps.send(b"mple ESMTP\r\n") is Want.READ  # greeted: EHLO goes out
    assert driver.data_to_send().startswith(b"EHLO ")
    assert driver.read_timeout() == 10  # a new command, a new deadline
    now[0] += 9.5
    assert steps.send(b"250-mx.example\r\n") is Want.READ
    assert driver.read_timeout() == 0.5
    now[0] += 0.5
    with pytest.raises(SMTPTimeoutError, match="no reply from the server within 10"):
        driver.read_timeout()
    steps.close()


def test_each_operation_has_its_own_deadline() -> None:
    """An idle session between operations is the caller's business, not a late reply."""
    now = [0.0]
    options = ClientOptions(host="mx.example", port=25, timeout=5)
    driver = ClientDriver(options, clock=lambda: now[0])
    steps = driver.connect()
    next(steps)
    driver.read_timeout()
    steps.send(b"220 mx.example ESMTP\r\n")
    driver.data_to_send()
    with pytest.raises(StopIteration):
        steps.send(b"250 mx.example\r\n")
    now[0] += 60
    steps = driver.noop()
    assert next(steps) is Want.READ
    assert driver.data_to_send() == b"NOOP\r\n"
    assert driver.read_timeout() == 5
    steps.close()
    unbounded = ClientDriver(ClientOptions(host="mx.example", port=25, timeout=None))
    next(unbounded.connect())
    assert unbounded.read_timeout() is None


def test_send_many_flushes_released_bodies_before_handling_results() -> None:
    """Once a read brings the replies that release the next body (its 354), the batch yields
    ``Want.WRITE`` so the body leaves before the results are worked on and the window refilled
    (the server then works while the client does); only then does it read again."""
    driver = ClientDriver(ClientOptions(host="mx.example", port=25, timeout=10))
    steps = driver.connect()
    assert next(steps) is Want.READ
    steps.send(b"220 mx.example ESMTP\r\n")
    driver.data_to_send()
    with pytest.raises(StopIteration):
        steps.send(b"250-mx.example\r\n250 PIPELINING\r\n")
    items = [(b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i), "a@x.org", ["b@x.org"]) for i in range(5)]
    batch = driver.send_many(items, window=4)
    assert next(batch) is Want.READ
    envelope = b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
    assert driver.data_to_send() == envelope
    # The 354 releases the first body (no result yet: the batch reads on, flushing first); its
    # final dot carries the second envelope.
    assert batch.send(b"250 ok\r\n250 ok\r\n354 go\r\n") is Want.READ
    assert driver.data_to_send() == b"Subject: 0\r\n\r\nbody 0\r\n.\r\n" + envelope
    assert batch.send(b"250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n") is Want.WRITE
    assert driver.data_to_send() == b"Subject: 1\r\n\r\nbody 1\r\n.\r\n" + envelope
    want = batch.send(None)
    for i in range(2, 5):
        assert want is Want.READ
        want = batch.send(b"250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        assert want is Want.WRITE
        expected = b"Subject: %d\r\n\r\nbody %d\r\n.\r\n" % (i, i)
        assert driver.data_to_send() == (expected if i == 4 else expected + envelope)
        want = batch.send(None)
    assert want is Want.READ
    with pytest.raises(StopIteration) as stop:  # nothing left to flush: no Want.WRITE
        batch.send(b"250 queued\r\n")
    results = stop.value.value
    assert [r.ok for r in results] == [True] * 5


@pytest.mark.parametrize(
    ("step", "raised", "expected", "text"),
    [
        ("read", TimeoutError(), "SMTPTimeoutError", "no reply from the server within 7"),
        ("write", TimeoutError(), "SMTPTimeoutError", "writing to mx.example:25 timed out"),
        ("connect", TimeoutError(), "SMTPTimeoutError", "connecting to mx.example:25"),
        ("tls", ssl.SSLError("bad"), "SMTPTLSError", "TLS handshake with mx.example:25 failed"),
        ("read", ssl.SSLError("bad"), "SMTPServerDisconnected", "connection lost"),
        ("connect", ConnectionRefusedError(), "SMTPConnectionError", "cannot connect"),
        ("write", BrokenPipeError(), "SMTPServerDisconnected", "lost while writing"),
        ("read", ConnectionResetError(), "SMTPServerDisconnected", "connection lost"),
    ],
)
def test_io_errors_translation(step: Step, raised: Exception, expected: str, text: str) -> None:
    """What a connect, read, write or handshake raised becomes one of our errors, chained."""
    options = ClientOptions(host="mx.example", port=25, timeout=7)
    with pytest.raises(SMTPClientError, match=text) as info, io_errors(step, options):
        raise raised
    assert type(info.value).__name__ == expected
    assert info.value.__cause__ is raised


def test_io_errors_lets_other_exceptions_through() -> None:
    options = ClientOptions(host="mx.example", port=25)
    ours = SMTPNotSupportedError("no")
    with pytest.raises(SMTPNotSupportedError) as info, io_errors("read", options):
        raise ours
    assert info.value is ours
    with pytest.raises(KeyError), io_errors("read", options):
        raise KeyError("x")
    with pytest.raises(KeyboardInterrupt), io_errors("write", options):
        raise KeyboardInterrupt
    with io_errors("read", options):  # nothing raised: nothing happens
        pass


def test_set_timeout_skips_an_unchanged_timeout() -> None:
    left, right = socket.socketpair()
    with left, right:
        _set_timeout(left, 60.0)
        assert left.gettimeout() == 60.0
        _set_timeout(left, 60.0 + 1e-9)  # the same to the microsecond: left as it is
        assert left.gettimeout() == 60.0
        _set_timeout(left, 59.5)
        assert left.gettimeout() == 59.5
        _set_timeout(left, None)
        assert left.gettimeout() is None
