"""Phase-1 proof of the peer helpers, against programs nobody here wrote.

Each helper in :mod:`tests.interop.peers` is exercised against a real counterpart (smtplib,
aiosmtpd, Postfix, smtp-sink) before it is pointed at ``esmtp serve``, so that an interop failure
means our code is wrong, not the harness.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from pathlib import Path

import pytest

from .peers import (
    PeerError,
    PostfixInstance,
    TestPKI,
    free_port,
    make_pki,
    postfix_instance,
    run_msmtp,
    run_s_client,
    run_smtp_source,
    run_swaks,
    same_certificate,
    smtp_sink,
    strip_trace_headers,
    wait_for_maildir,
    wait_for_port,
)
from .standin import aiosmtpd_maildir_server

pytestmark = pytest.mark.interop

# CRLF throughout, ending in CRLF: what a client sends is exactly what a server must store.
# Dot lines (RFC 5321 §4.5.2), a lone "." line, and 8-bit UTF-8 in header and body.
MESSAGE = (
    b"From: Sender <sender@client.test>\r\n"
    b"To: rcpt@server.test\r\n"
    b"Subject: interop caf\xc3\xa9\r\n"
    b"Message-ID: <interop-1@client.test>\r\n"
    b"\r\n"
    b"Line one\r\n"
    b".starts with a dot\r\n"
    b"..two dots\r\n"
    b".\r\n"
    b"8-bit: caf\xc3\xa9 \xe2\x82\xac\r\n"
    b"last line\r\n"
)
USERS = {"alice": "s3cret p\xe4ss".encode("latin-1").decode("latin-1")}


def lf(data: bytes) -> bytes:
    """CRLF to LF, the form Postfix and smtp-sink write messages in."""
    return data.replace(b"\r\n", b"\n")


# --------------------------------------------------------------------------- plumbing


def test_wait_for_port_times_out_then_sees_listener() -> None:
    port = free_port()
    with pytest.raises(PeerError, match="nothing listening"):
        wait_for_port(port, timeout=0.2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        wait_for_port(port, timeout=2)


def test_strip_trace_headers_requires_the_trace_fields() -> None:
    stored = b"Return-Path: <a@b>\r\nReceived: from x\r\n\tby y; date\r\n" + MESSAGE
    assert strip_trace_headers(stored) == MESSAGE
    with pytest.raises(ValueError, match="return-path"):
        strip_trace_headers(MESSAGE)
    with pytest.raises(ValueError, match="received"):
        strip_trace_headers(b"Return-Path: <a@b>\r\n" + MESSAGE)


def test_pki_fingerprint_and_contexts(pki: TestPKI) -> None:
    assert len(pki.sha256_fingerprint.split(":")) == 32
    server_ctx, client_ctx = pki.server_context(), pki.client_context()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as raw_client:
            raw_server, _ = listener.accept()
            raw_client.setblocking(False)
            raw_server.setblocking(False)
            client = client_ctx.wrap_socket(
                raw_client, server_hostname="mx.test", do_handshake_on_connect=False
            )
            server = server_ctx.wrap_socket(
                raw_server, server_side=True, do_handshake_on_connect=False
            )
            done = {"client": False, "server": False}
            for _ in range(200):
                for name, sock in (("client", client), ("server", server)):
                    if not done[name]:
                        try:
                            sock.do_handshake()
                            done[name] = True
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            pass
                if all(done.values()):
                    break
            assert all(done.values())
            assert client.getpeercert(binary_form=True) == pki.cert_der
            server.close()
            client.close()


# --------------------------------------------------------------------------- smtp-sink / source


@pytest.mark.needs("smtp-sink")
def test_smtp_sink_dump_captures_smtplib(work: Path) -> None:
    with (
        smtp_sink(work, dump=True) as sink,
        smtplib.SMTP("127.0.0.1", sink.port, local_hostname="client.test", timeout=10) as client,
    ):
        client.sendmail(
            "sender@client.test",
            ["one@server.test", "two@server.test"],
            MESSAGE,
            mail_options=["BODY=8BITMIME"],
        )
        [captured] = sink.wait_for_messages(1)
    assert captured.helo == "client.test"
    assert captured.mail_args.startswith("<sender@client.test>")
    assert "BODY=8BITMIME" in captured.mail_args
    assert captured.rcpt_args == ("<one@server.test>", "<two@server.test>")
    assert captured.content == lf(MESSAGE)


@pytest.mark.needs("smtp-sink", "smtp-source")
def test_smtp_source_20_sessions_into_smtp_sink(work: Path) -> None:
    with smtp_sink(work) as sink:
        result = run_smtp_source(sink.port, sessions=20, messages=200, size=1024)
    result.check()
    assert "rror" not in result.stderr, result.stderr


@pytest.mark.needs("smtp-source")
def test_smtp_source_counts_errors(work: Path) -> None:
    """A refused transaction makes smtp-source fail, so ``check()`` proves "zero errors"."""
    with smtp_sink(work, extra_args=["-f", "RCPT"]) as sink:
        result = run_smtp_source(sink.port, sessions=2, messages=4)
    assert result.returncode != 0 or result.stderr.strip(), result


@pytest.mark.needs("smtp-source")
def test_smtp_source_into_standin(work: Path) -> None:
    maildir = work / "Maildir"
    message_file = work / "source.eml"
    message_file.write_bytes(lf(MESSAGE))
    with aiosmtpd_maildir_server(maildir) as server:
        run_smtp_source(server.port, sessions=5, messages=10, message_file=message_file).check()
        stored = wait_for_maildir(maildir, 10)
    assert len(stored) == 10
    # smtp-source sends the file's lines with CRLF and dot-stuffing, then one empty line of its
    # own before the final dot: the store gets the original plus that CRLF.
    assert all(strip_trace_headers(m) == MESSAGE + b"\r\n" for m in stored)


# --------------------------------------------------------------------------- swaks


@pytest.mark.needs("swaks")
def test_swaks_plain_pipelined_byte_exact(work: Path) -> None:
    maildir = work / "Maildir"
    with aiosmtpd_maildir_server(maildir) as server:
        result = run_swaks(server.port, data=MESSAGE, directory=work, pipeline=True)
        result.check()
        [stored] = wait_for_maildir(maildir, 1)
    assert strip_trace_headers(stored) == MESSAGE
    assert server.envelopes[0]["mail_from"] == "sender@client.test"


@pytest.mark.needs("swaks")
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_starttls_auth_verified(work: Path, pki: TestPKI, mechanism: str) -> None:
    maildir = work / "Maildir"
    [(user, password)] = USERS.items()
    with aiosmtpd_maildir_server(maildir, pki=pki, users=USERS) as server:
        result = run_swaks(
            server.port,
            data=MESSAGE,
            directory=work,
            tls="starttls",
            ca_file=pki.ca_file,
            auth=mechanism,
            user=user,
            password=password,
        )
        result.check()
        [stored] = wait_for_maildir(maildir, 1)
    assert strip_trace_headers(stored) == MESSAGE
    assert "STARTTLS" in result.stdout


@pytest.mark.needs("swaks")
def test_swaks_wrong_password_fails(work: Path, pki: TestPKI) -> None:
    with aiosmtpd_maildir_server(work / "Maildir", pki=pki, users=USERS) as server:
        result = run_swaks(
            server.port, tls="starttls", auth="PLAIN", user="alice", password="wrong"
        )
    assert result.returncode != 0


@pytest.mark.needs("swaks")
def test_swaks_implicit_tls(work: Path, pki: TestPKI) -> None:
    maildir = work / "Maildir"
    with aiosmtpd_maildir_server(maildir, pki=pki, implicit_tls=True) as server:
        run_swaks(
            server.port, data=MESSAGE, directory=work, tls="implicit", ca_file=pki.ca_file
        ).check()
        [stored] = wait_for_maildir(maildir, 1)
    assert strip_trace_headers(stored) == MESSAGE


@pytest.mark.needs("swaks")
def test_swaks_verification_rejects_unknown_ca(work: Path, pki: TestPKI) -> None:
    other = make_pki(work / "other-ca")
    with aiosmtpd_maildir_server(work / "Maildir", pki=pki) as server:
        result = run_swaks(server.port, tls="starttls", ca_file=other.ca_file)
    assert result.returncode != 0


# --------------------------------------------------------------------------- msmtp


@pytest.mark.needs("msmtp")
def test_msmtp_starttls_auth_plain(work: Path, pki: TestPKI) -> None:
    maildir = work / "Maildir"
    [(user, password)] = USERS.items()
    with aiosmtpd_maildir_server(maildir, pki=pki, users=USERS) as server:
        result = run_msmtp(
            server.port,
            work,
            message=lf(MESSAGE),
            tls="starttls",
            ca_file=pki.ca_file,
            auth="plain",
            user=user,
            password=password,
            recipients=["one@server.test", "two@server.test"],
        )
        result.check()
        [stored] = wait_for_maildir(maildir, 1)
    # msmtp turns LF into CRLF and dot-stuffs; the server stores the original CRLF message.
    assert strip_trace_headers(stored) == MESSAGE
    assert server.envelopes[0]["rcpt_tos"] == ["one@server.test", "two@server.test"]


# --------------------------------------------------------------------------- openssl s_client


@pytest.mark.needs("openssl")
def test_s_client_starttls_sees_the_certificate(work: Path, pki: TestPKI) -> None:
    with aiosmtpd_maildir_server(work / "Maildir", pki=pki) as server:
        probe = run_s_client(server.port, ca_file=pki.ca_file, servername="mx.test")
        wrong = run_s_client(server.port, ca_file=make_pki(work / "other").ca_file)
    assert probe.handshake_ok, probe.result
    assert probe.verify_code == 0
    assert probe.leaf_pem is not None
    assert same_certificate(probe.leaf_pem, pki.cert_pem)
    assert not wrong.handshake_ok or wrong.verify_code != 0


# --------------------------------------------------------------------------- Postfix


@pytest.mark.needs("postfix")
def test_postfix_hold_shows_smtplib_message_with_dsn(
    postfix_hold: PostfixInstance, pki: TestPKI
) -> None:
    sender = "hold-smtplib@client.test"
    with smtplib.SMTP(
        "127.0.0.1", postfix_hold.port, local_hostname="client.test", timeout=10
    ) as client:
        client.starttls(context=pki.client_context())
        client.ehlo()
        for keyword in ("pipelining", "chunking", "smtputf8", "dsn", "8bitmime"):
            assert client.has_extn(keyword), keyword
        client.sendmail(
            sender,
            ["rcpt@server.test"],
            MESSAGE,
            mail_options=["SMTPUTF8", "BODY=8BITMIME", "RET=HDRS", "ENVID=env-42"],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;rcpt@server.test"],
        )
    [entry] = postfix_hold.wait_for_queue(1, sender=sender)
    assert [r["address"] for r in entry["recipients"]] == ["rcpt@server.test"]
    records = postfix_hold.postcat(entry["queue_id"], "-e")
    assert "envelope_id=env-42" in records
    assert "notify_flags=6" in records  # SUCCESS (2) | FAILURE (4), RFC 3461 §4.1
    assert "dsn_orig_rcpt=rfc822;rcpt@server.test" in records
    content = postfix_hold.message_content(entry["queue_id"])
    assert b"with UTF8SMTPS" in content  # RFC 6531 §4.3 / RFC 3848 protocol name
    assert strip_trace_headers(content, return_path=False) == lf(MESSAGE)


@pytest.mark.needs("postfix")
def test_postfix_hold_accepts_bdat(postfix_hold: PostfixInstance) -> None:
    """A hand-written RFC 3030 BDAT transaction: proves the instance's CHUNKING works."""
    sender = "hold-bdat@client.test"
    half = len(MESSAGE) // 2
    with socket.create_connection(("127.0.0.1", postfix_hold.port), timeout=10) as sock:
        stream = sock.makefile("rwb")

        def reply() -> bytes:
            lines = [stream.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(stream.readline())
            return b"".join(lines)

        assert reply().startswith(b"220")
        stream.write(b"EHLO client.test\r\n")
        stream.flush()
        assert b"CHUNKING" in reply()
        stream.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<rcpt@server.test>\r\n".encode())
        stream.write(f"BDAT {half}\r\n".encode() + MESSAGE[:half])
        stream.write(f"BDAT {len(MESSAGE) - half} LAST\r\n".encode() + MESSAGE[half:])
        stream.write(b"QUIT\r\n")
        stream.flush()
        replies = [reply() for _ in range(5)]
    assert [r[:3] for r in replies] == [b"250", b"250", b"250", b"250", b"221"], replies
    [entry] = postfix_hold.wait_for_queue(1, sender=sender)
    content = postfix_hold.message_content(entry["queue_id"])
    assert b"with ESMTP" in content
    assert strip_trace_headers(content, return_path=False) == lf(MESSAGE)


@pytest.mark.needs("postfix", "swaks")
def test_swaks_into_postfix_starttls(
    postfix_hold: PostfixInstance, pki: TestPKI, work: Path
) -> None:
    sender = "hold-swaks@client.test"
    run_swaks(
        postfix_hold.port,
        sender=sender,
        data=MESSAGE,
        directory=work,
        tls="starttls",
        ca_file=pki.ca_file,
        pipeline=True,
    ).check()
    [entry] = postfix_hold.wait_for_queue(1, sender=sender)
    content = postfix_hold.message_content(entry["queue_id"])
    assert strip_trace_headers(content, return_path=False) == lf(MESSAGE)


@pytest.mark.needs("postfix", "sendmail")
def test_postfix_sendmail_into_maildir() -> None:
    with postfix_instance(mode="maildir") as instance:
        instance.sendmail(lf(MESSAGE), ["someone@server.test"], sender="maildir@client.test")
        [stored] = instance.wait_for_maildir(1)
    # Postfix's virtual agent prepends Delivered-To, Return-Path and its Received field.
    assert stored.endswith(lf(MESSAGE).split(b"\n\n", 1)[1])
    assert b"Return-Path: <maildir@client.test>" in stored


@pytest.mark.needs("postfix", "sendmail")
def test_postfix_relays_to_standin_with_pinned_starttls(work: Path, pki: TestPKI) -> None:
    maildir = work / "Maildir"
    with (
        aiosmtpd_maildir_server(maildir, pki=pki) as server,
        postfix_instance(
            mode="relay",
            relayhost=f"[127.0.0.1]:{server.port}",
            route_ports=[server.port],
            relay_tls="fingerprint",
            relay_fingerprint=pki.sha256_fingerprint,
        ) as relay,
    ):
        # Once through relayhost, once through the transport table (user@PORT.port.test).
        routed = relay.routed("routed", server.port)
        relay.sendmail(MESSAGE, ["far@server.test"], sender="relay@client.test")
        relay.sendmail(MESSAGE, [routed], sender="relay@client.test")
        stored = wait_for_maildir(maildir, 2, timeout=20)
        log = relay.log()
    assert f"Verified TLS connection established to 127.0.0.1[127.0.0.1]:{server.port}" in log
    assert sorted(e["rcpt_tos"][0] for e in server.envelopes) == ["far@server.test", routed]
    body = lf(MESSAGE).split(b"\n\n", 1)[1]
    assert all(m.endswith(body.replace(b"\n", b"\r\n")) for m in stored)
