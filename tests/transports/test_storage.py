"""Storage: Maildir durability order, byte-exact bodies behind trace headers, mboxrd quoting."""

from __future__ import annotations

import io
import mailbox
import os
import threading
from pathlib import Path

import pytest

from esmtp_core import MailParams
from transports import storage
from transports.handler import Envelope, Session
from transports.storage import Maildir, Mbox, Stdout, StoringHandler, trace_headers

BODY = b"Subject: hi\r\n\r\nline one\r\n.dot line kept as received\r\nFrom the start\r\n"


def _session(**changes: object) -> Session:
    session = Session(hostname="mx.test", peer=("192.0.2.7", 40000))
    session.hello_verb, session.hello_name = "EHLO", "client.test"
    for name, value in changes.items():
        setattr(session, name, value)
    return session


def _deliver(
    handler: StoringHandler, session: Session, envelope: Envelope, *pieces: bytes
) -> object:
    session.envelope = envelope
    handler.message_start(session, envelope)
    for piece in pieces:
        handler.message_data(session, envelope, piece)
    return handler.message_end(session, envelope)


def test_trace_headers_single_recipient() -> None:
    envelope = Envelope(mail_from="a@example.org", rcpt_to=["b@example.net"])
    session = _session(envelope=envelope)
    head = trace_headers(session, envelope, message_id="X1", date="Sun, 1 Nov 2026 10:00:00 +0000")
    assert head == (
        b"Return-Path: <a@example.org>\r\n"
        b"Received: from client.test ([192.0.2.7])\r\n"
        b"\tby mx.test with ESMTP id X1\r\n"
        b"\tfor <b@example.net>; Sun, 1 Nov 2026 10:00:00 +0000\r\n"
    )


@pytest.mark.parametrize(
    ("verb", "tls", "user", "lmtp", "utf8", "expected"),
    [
        ("HELO", False, None, False, False, "SMTP"),
        ("EHLO", False, None, False, False, "ESMTP"),
        ("EHLO", True, None, False, False, "ESMTPS"),
        ("EHLO", False, "u", False, False, "ESMTPA"),
        ("EHLO", True, "u", False, False, "ESMTPSA"),
        ("LHLO", False, None, True, False, "LMTP"),
        ("LHLO", True, "u", True, False, "LMTPSA"),
        ("EHLO", True, "u", False, True, "UTF8SMTPSA"),
        ("LHLO", False, None, True, True, "UTF8LMTP"),
    ],
)
def test_received_protocol_names(
    verb: str, tls: bool, user: str | None, lmtp: bool, utf8: bool, expected: str
) -> None:
    envelope = Envelope(mail_from="", mail_params=MailParams(smtputf8=utf8))
    session = _session(hello_verb=verb, tls_active=tls, authenticated=user, lmtp=lmtp)
    session.envelope = envelope
    assert storage.received_protocol(session) == expected


def test_trace_headers_several_recipients_have_no_for_clause_and_null_sender() -> None:
    envelope = Envelope(mail_from="", rcpt_to=["x@a.test", "y@b.test"])
    head = trace_headers(_session(), envelope, date="D")
    assert head.startswith(b"Return-Path: <>\r\n")
    assert b"for <" not in head
    assert head.endswith(b"with ESMTP; D\r\n")


def test_maildir_body_exact_and_only_in_new(tmp_path: Path) -> None:
    handler = StoringHandler(Maildir(tmp_path / "md"))
    envelope = Envelope(mail_from="a@example.org", rcpt_to=["b@example.net"])
    session = _session()
    session.envelope = envelope
    handler.message_start(session, envelope)
    handler.message_data(session, envelope, BODY[:10])
    # While the body streams, the file is in tmp/ and nowhere else.
    assert len(os.listdir(tmp_path / "md" / "tmp")) == 1
    assert os.listdir(tmp_path / "md" / "new") == []
    handler.message_data(session, envelope, BODY[10:])
    reply = handler.message_end(session, envelope)
    assert getattr(reply, "code", None) == 250
    assert os.listdir(tmp_path / "md" / "tmp") == []
    (name,) = os.listdir(tmp_path / "md" / "new")
    content = (tmp_path / "md" / "new" / name).read_bytes()
    head, _, body = content.partition(b"\r\n\tfor <b@example.net>; ")
    assert head.startswith(b"Return-Path: <a@example.org>\r\nReceived: from client.test")
    assert body.split(b"\r\n", 1)[1] == BODY  # byte for byte after the trace fields


def test_maildir_fsyncs_file_before_rename_and_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        calls.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def rename(src: object, dst: object) -> None:
        calls.append("rename")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "rename", rename)
    handler = StoringHandler(Maildir(tmp_path))
    _deliver(handler, _session(), Envelope(mail_from="a@x.test", rcpt_to=["b@y.test"]), BODY)
    assert calls == ["fsync-file", "rename", "fsync-dir"]


def test_maildir_unique_names(tmp_path: Path) -> None:
    maildir = Maildir(tmp_path)
    ordered = [maildir.unique_name() for _ in range(1000)]
    names = set(ordered)
    assert len(names) == 1000
    assert sorted(ordered) == ordered  # one process's deliveries sort in order
    assert all("/" not in name and ":" not in name for name in names)


def test_maildir_abort_leaves_nothing(tmp_path: Path) -> None:
    handler = StoringHandler(Maildir(tmp_path))
    envelope = Envelope(mail_from="a@x.test", rcpt_to=["b@y.test"])
    session = _session()
    handler.message_start(session, envelope)
    handler.message_data(session, envelope, b"partial")
    handler.message_aborted(session, envelope)
    for sub in ("tmp", "new", "cur"):
        assert os.listdir(tmp_path / sub) == []


def test_maildir_readable_by_stdlib(tmp_path: Path) -> None:
    handler = StoringHandler(Maildir(tmp_path))
    _deliver(handler, _session(), Envelope(mail_from="a@x.test", rcpt_to=["b@y.test"]), BODY)
    (message,) = list(mailbox.Maildir(tmp_path, create=False))
    assert message["Subject"] == "hi"
    assert message["Return-Path"] == "<a@x.test>"


def test_mbox_quoting_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "box"
    handler = StoringHandler(Mbox(path))
    bodies = [
        b"Subject: one\n\nFrom me\n>From you\n>>From them\nFromage\n",
        b"Subject: two\r\n\r\nno newline at end",
    ]
    for body in bodies:
        _deliver(handler, _session(), Envelope(mail_from="a@x.test", rcpt_to=["b@y.test"]), body)
    raw = path.read_bytes()
    assert raw.startswith(b"From a@x.test ")
    assert b"\n>From me\n>>From you\n>>>From them\nFromage\n" in raw
    assert b"no newline at end\n\n" in raw
    messages = list(mailbox.mbox(path))
    assert [m["Subject"] for m in messages] == ["one", "two"]


def test_mbox_concurrent_appends_do_not_interleave(tmp_path: Path) -> None:
    path = tmp_path / "box"
    handler = StoringHandler(Mbox(path))
    errors: list[BaseException] = []

    def deliver(n: int) -> None:
        try:
            envelope = Envelope(mail_from=f"s{n}@x.test", rcpt_to=["b@y.test"])
            body = f"Subject: {n}\n\n".encode() + b"x" * 2000 + b"\n"
            _deliver(handler, _session(), envelope, body[:50], body[50:])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    subjects = sorted(int(m["Subject"]) for m in mailbox.mbox(path))
    assert subjects == list(range(20))


def test_stdout_store_writes_whole_message() -> None:
    stream = io.BytesIO()
    handler = StoringHandler(Stdout(stream))
    envelope = Envelope(mail_from="a@x.test", rcpt_to=["b@y.test"])
    reply = _deliver(handler, _session(), envelope, BODY[:5], BODY[5:])
    assert getattr(reply, "code", None) == 250
    assert stream.getvalue().startswith(b"Return-Path: <a@x.test>\r\n")
    assert stream.getvalue().endswith(BODY)


def test_credentials_check() -> None:
    handler = StoringHandler(Stdout(io.BytesIO()), credentials={"alice": "s3cret"})
    session = _session()
    assert handler.check_password(session, "alice", "s3cret")
    assert not handler.check_password(session, "alice", "wrong")
    assert not handler.check_password(session, "bob", "s3cret")
    assert not handler.check_password(session, "alice", "s3cret", authzid="bob")
    assert handler.lookup_secret(session, "SCRAM-SHA-256", "alice") == "s3cret"
