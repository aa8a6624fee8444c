"""Postfix as the server: our clients (async and sync) deliver to a throwaway Postfix smtpd.

Issue 8: PIPELINING, CHUNKING, STARTTLS, SMTPUTF8 and DSN parameters; Postfix's queue shows the
messages. The instance puts everything on hold, so the queue file itself is the evidence: the
envelope (``postqueue -j``), the DSN records (``postcat -e``: ENVID, RET, NOTIFY, ORCPT per
RFC 3461), the content (``postcat -bh``) and smtpd's per-session command counts (BDAT vs DATA).
"""

from __future__ import annotations

import pytest

from esmtp_core import ClientConfig, DsnNotify, DsnReturn

from .clients import CLIENT_FLAVOURS, Outgoing, deliver
from .messages import DOT_HEAVY_BODY, lf, message, unique_tag
from .peers import PostfixInstance, TestPKI, strip_trace_headers

pytestmark = [pytest.mark.interop, pytest.mark.needs("postfix")]


def held_message(instance: PostfixInstance, sender: str) -> tuple[dict[str, object], bytes, str]:
    """The one held message from ``sender``: queue entry, content, envelope records."""
    [entry] = instance.wait_for_queue(1, sender=sender)
    queue_id = str(entry["queue_id"])
    return entry, instance.message_content(queue_id), instance.postcat(queue_id, "-e")


@pytest.mark.parametrize("flavour", CLIENT_FLAVOURS)
def test_starttls_chunking_smtputf8_dsn(
    flavour: str, postfix_hold: PostfixInstance, pki: TestPKI
) -> None:
    tag = unique_tag(f"to-postfix-{flavour}")
    # A UTF-8 local part needs SMTPUTF8 (RFC 6531 §3.3); the client must ask for it itself.
    sender = f"s\u00e9nder-{tag}@client.test"
    recipients = ("one@server.test", "two@server.test")
    sent = message(tag, sender=sender)
    delivery = deliver(
        flavour,
        postfix_hold.port,
        [
            Outgoing(
                sent,
                sender,
                recipients,
                dsn_notify=(DsnNotify.SUCCESS, DsnNotify.FAILURE),
                dsn_return=DsnReturn.HEADERS,
                envid=f"env-{tag}",
            )
        ],
        tls="starttls",
        ssl_context=pki.client_context(),
        server_hostname="mx.test",
    )
    [result] = delivery.results
    assert set(result.accepted) == set(recipients)
    assert delivery.tls_active
    for keyword in ("PIPELINING", "CHUNKING", "SMTPUTF8", "DSN", "8BITMIME"):
        assert delivery.capabilities.has(keyword), keyword

    entry, content, records = held_message(postfix_hold, sender)
    recipients_seen = entry["recipients"]
    assert isinstance(recipients_seen, list)
    assert sorted(r["address"] for r in recipients_seen) == sorted(recipients)
    assert f"envelope_id=env-{tag}" in records
    assert "ret_flags=2" in records  # RET=HDRS
    assert records.count("notify_flags=6") == 2  # SUCCESS (2) | FAILURE (4) on each RCPT
    # Postfix records SMTPUTF8 and TLS in its Received field (RFC 6531 §4.3, RFC 3848).
    assert b"with UTF8SMTPS" in content
    assert strip_trace_headers(content, return_path=False) == lf(sent)
    commands = postfix_hold.session_commands(str(entry["queue_id"]))
    assert commands.get("starttls") == 1
    assert commands.get("bdat", 0) >= 1  # RFC 3030: CHUNKING was offered, so it was used
    assert "data" not in commands


@pytest.mark.parametrize("flavour", CLIENT_FLAVOURS)
def test_data_path_with_dot_lines(
    flavour: str, postfix_hold: PostfixInstance, pki: TestPKI
) -> None:
    """With CHUNKING turned off the client uses DATA: dot-stuffing must be right (RFC 5321
    §4.5.2), several messages over one pipelined session."""
    tags = [unique_tag(f"to-postfix-data-{flavour}") for _ in range(3)]
    sender = f"data-{tags[0]}@client.test"
    outgoing = [
        Outgoing(message(tag, sender=sender, body=DOT_HEAVY_BODY), sender, ("rcpt@server.test",))
        for tag in tags
    ]
    delivery = deliver(
        flavour,
        postfix_hold.port,
        outgoing,
        tls="starttls",
        ssl_context=pki.client_context(),
        server_hostname="mx.test",
        config=ClientConfig(use_chunking=False),
    )
    assert all(r.accepted == ("rcpt@server.test",) for r in delivery.results)
    entries = postfix_hold.wait_for_queue(3, sender=sender)
    contents = {
        strip_trace_headers(postfix_hold.message_content(str(e["queue_id"])), return_path=False)
        for e in entries
    }
    assert contents == {lf(item.data) for item in outgoing}
    commands = postfix_hold.session_commands(str(entries[0]["queue_id"]))
    assert commands.get("data") == 3
    assert commands.get("mail") == 3
    assert "bdat" not in commands
