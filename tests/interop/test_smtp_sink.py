"""Our clients deliver to Postfix's ``smtp-sink`` with zero errors (issue 8).

smtp-sink answers every command positively unless told otherwise; a client that mis-frames
anything would see the sink's "500" replies or a stuck session. One session per flavour carries
many messages (pipelined where offered), and one captured message is checked byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .clients import CLIENT_FLAVOURS, Outgoing, deliver
from .messages import DOT_HEAVY_BODY, lf, message, unique_tag
from .peers import smtp_sink

pytestmark = [pytest.mark.interop, pytest.mark.needs("smtp-sink")]

MESSAGES = 200


@pytest.mark.parametrize("flavour", CLIENT_FLAVOURS)
def test_many_messages_zero_errors(flavour: str, work: Path) -> None:
    tag = unique_tag(f"to-sink-{flavour}")
    item = Outgoing(message(tag), "sender@client.test", ("a@server.test", "b@server.test"))
    with smtp_sink(work) as sink:
        delivery = deliver(flavour, sink.port, [item] * MESSAGES)
    assert len(delivery.results) == MESSAGES
    assert all(set(r.accepted) == set(item.recipients) for r in delivery.results)


@pytest.mark.parametrize("flavour", CLIENT_FLAVOURS)
def test_captured_byte_for_byte(flavour: str, work: Path) -> None:
    tag = unique_tag(f"to-sink-dump-{flavour}")
    sent = message(tag, body=DOT_HEAVY_BODY)
    with smtp_sink(work, dump=True) as sink:
        deliver(flavour, sink.port, [Outgoing(sent, "sender@client.test", ("a@server.test",))])
        [captured] = sink.wait_for_messages(1)
    assert captured.rcpt_args[0].startswith("<a@server.test>")
    assert captured.content == lf(sent)
