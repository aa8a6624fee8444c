"""Postfix as the client: a throwaway Postfix relays to ``esmtp serve`` with STARTTLS.

Issue 8: mail injected with Postfix's ``sendmail -C DIR`` arrives in our Maildir. Postfix pins
our certificate's fingerprint, so delivery proves the STARTTLS handshake (RFC 3207) with the
right certificate; it sends 8-bit text with SMTPUTF8 (RFC 6531) when the headers need it.
"""

from __future__ import annotations

import re

import pytest

from .messages import DOT_HEAVY_BODY, lf, message, unique_tag
from .ours import OurServer
from .peers import PeerError, PostfixInstance, strip_trace_headers

pytestmark = [pytest.mark.interop, pytest.mark.needs("postfix", "sendmail")]


@pytest.mark.parametrize("body", [None, DOT_HEAVY_BODY], ids=["8bit", "dots"])
def test_postfix_relays_over_starttls(
    serve_starttls: OurServer, postfix_relay: PostfixInstance, body: bytes | None
) -> None:
    tag = unique_tag("postfix-relay")
    recipient = postfix_relay.routed("far", serve_starttls.port)
    sent = message(tag, recipient=recipient, body=body)
    postfix_relay.sendmail(lf(sent), [recipient], sender="relay@client.test")
    try:
        [stored] = serve_starttls.wait_for_marked(f"<{tag}@client.test>".encode(), timeout=30)
    except PeerError as exc:
        raise PeerError(f"{exc}\n{postfix_relay.queue_listing()}\n{postfix_relay.log()}") from None
    # Our Return-Path and Received, then Postfix's own Received (pickup), then the message.
    assert stored.startswith(b"Return-Path: <relay@client.test>\r\n")
    assert strip_trace_headers(stored, received=2) == sent
    trace = stored.split(b"\r\n\r\n", 1)[0]
    # RFC 3848 / RFC 6531 §3.7.3: "ESMTPS" or, with SMTPUTF8, "UTF8SMTPS": Postfix used STARTTLS.
    assert re.search(rb"\bwith (ESMTPS|UTF8SMTPS)\b", trace), trace
    log = postfix_relay.log()
    assert (
        f"Verified TLS connection established to 127.0.0.1[127.0.0.1]:{serve_starttls.port}" in log
    )
