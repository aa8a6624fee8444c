"""What every client adapter does with the server's extensions (RFC 2920 PIPELINING, RFC 3030
CHUNKING/BINARYMIME, RFC 6152 8BITMIME, RFC 1870 SIZE, RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 2033
LMTP) and how it reports refusals, against our own thread server."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from _client_harness import CLIENTS, ParamsRecorder, open_client
from _transport_harness import run_server

from esmtp_core import BodyType, ClientConfig, ClientConnection, DsnNotify, DsnReturn, ServerConfig
from transports.errors import (
    SMTPDataError,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
)

SERVER = "threads"


@pytest.fixture(params=CLIENTS)
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def handler() -> ParamsRecorder:
    return ParamsRecorder()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the reads every client core is fed (one per network round trip at least)."""
    counter = [0]
    original = ClientConnection.receive_data

    def counting(self: ClientConnection, data: bytes) -> None:
        counter[0] += 1
        original(self, data)

    monkeypatch.setattr(ClientConnection, "receive_data", counting)
    return counter


RECIPIENTS = ["one@example.net", "two@example.net", "three@example.net"]
TEXT = b"Subject: pipelining\r\n\r\nbody\r\n"


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_pipelining_cuts_round_trips(
    client_kind: str, handler: ParamsRecorder, reads: list[int], chunking: bool
) -> None:
    counts = []
    config = ServerConfig(chunking=chunking)
    with run_server(SERVER, handler, config=config) as running:
        for pipelining in (True, False):
            client_config = ClientConfig(use_pipelining=pipelining)
            with open_client(client_kind, running.host, running.port, config=client_config) as c:
                assert c.capabilities.pipelining
                before = reads[0]
                assert c.send_message(TEXT, "a@example.org", RECIPIENTS).ok
                counts.append(reads[0] - before)
    pipelined, lockstep = counts
    # Without PIPELINING: MAIL, three RCPT and the data each wait for their reply (DATA: the 354
    # and the final reply). With it: MAIL, RCPT and BDAT/DATA go in one flight.
    assert lockstep >= 5
    assert pipelined <= (1 if chunking else 2) + 1  # +1: TCP may split a flight of replies
    assert pipelined < lockstep
    assert [m.content for m in handler.messages] == [TEXT, TEXT]


def test_binarymime_over_bdat_is_byte_exact(client_kind: str, handler: ParamsRecorder) -> None:
    body = b"Subject: bin\r\n\r\n\x00\x01 bare LF\n bare CR\r no final CRLF \xff"
    with run_server(SERVER, handler) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        assert client.capabilities.chunking
        assert client.capabilities.binarymime
        assert client.send_message(body, "a@example.org", ["b@example.net"], binary=True).ok
        # binary=True forces BINARYMIME even for a canonical message
        assert client.send_message(TEXT, "a@example.org", ["b@example.net"], binary=True).ok
        # never chosen from the content: without binary=True bare CR/LF become CRLF
        assert client.send_message(body, "a@example.org", ["b@example.net"]).ok
    crlf = b"Subject: bin\r\n\r\n\x00\x01 bare LF\r\n bare CR\r\n no final CRLF \xff"
    assert [m.content for m in handler.messages] == [body, TEXT, crlf]
    bodies = [p.body for p in handler.mail_params]
    assert bodies == [BodyType.BINARY_MIME, BodyType.BINARY_MIME, BodyType.EIGHT_BIT_MIME]
    assert [p.size for p in handler.mail_params] == [len(body), len(TEXT), len(crlf)]


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_eight_bit_and_size(client_kind: str, handler: ParamsRecorder, chunking: bool) -> None:
    body = "Subject: caf\u00e9\r\n\r\n\u20ac 8-bit\r\n.dot\r\n".encode()
    config = ServerConfig(chunking=chunking)
    with run_server(SERVER, handler, config=config) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        assert client.send_message(body, "a@example.org", ["b@example.net"]).ok
        assert client.send_message(TEXT, "a@example.org", ["b@example.net"]).ok
    assert [m.content for m in handler.messages] == [body, TEXT]
    eight_bit, seven_bit = handler.mail_params
    assert eight_bit.body is BodyType.EIGHT_BIT_MIME
    assert eight_bit.size == len(body)
    assert seven_bit.body is None


def test_size_limit_refused_before_sending(client_kind: str, handler: ParamsRecorder) -> None:
    config = ServerConfig(max_message_size=1000)
    with run_server(SERVER, handler, config=config) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        assert client.capabilities.size_limit == 1000
        with pytest.raises(SMTPNotSupportedError, match="SIZE"):
            client.send_message(b"x" * 2000 + b"\r\n", "a@example.org", ["b@example.net"])
        assert client.noop().code == 250  # nothing was sent: the session goes on
    assert handler.mail_params == []


def test_smtputf8(client_kind: str, handler: ParamsRecorder) -> None:
    message = EmailMessage()
    message["From"] = "J\u00f6ran <j\u00f6ran@ex\u00e4mple.org>"
    message["To"] = "zo\u00eb@example.net"
    message["Subject"] = "gr\u00fc\u00dfe"
    message.set_content("hall\u00e5\n")
    with run_server(SERVER, handler) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        assert client.send_message(message).ok
    (stored,) = handler.messages
    assert handler.mail_params[0].smtputf8
    assert stored.mail_from == "j\u00f6ran@ex\u00e4mple.org"
    assert stored.rcpt_to == ["zo\u00eb@example.net"]
    assert "To: zo\u00eb@example.net\r\n".encode() in stored.content  # RFC 6532 raw UTF-8


def test_smtputf8_not_offered(client_kind: str, handler: ParamsRecorder) -> None:
    with run_server(SERVER, handler, config=ServerConfig(smtputf8=False)) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        with pytest.raises(SMTPNotSupportedError, match="SMTPUTF8"):
            client.send_message(TEXT, "a@example.org", ["zo\u00eb@example.net"])
        assert client.send_message(TEXT, "a@example.org", ["zoe@example.net"]).ok


@pytest.mark.parametrize("dsn", [True, False], ids=["offered", "not-offered"])
def test_dsn(client_kind: str, handler: ParamsRecorder, dsn: bool) -> None:
    notify = {DsnNotify.SUCCESS, DsnNotify.FAILURE}
    with run_server(SERVER, handler, config=ServerConfig(dsn=dsn)) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        result = client.send_message(
            TEXT,
            "a@example.org",
            ["b@example.net"],
            dsn_notify=notify,
            dsn_return=DsnReturn.HEADERS,
            envid="QQ314159",
        )
        assert result.ok
    (mail,) = handler.mail_params
    (rcpt,) = handler.rcpt_params
    if dsn:
        assert (mail.ret, mail.envid, rcpt.notify) == (DsnReturn.HEADERS, "QQ314159", notify)
    else:  # not offered: not asked for, and the message still goes
        assert (mail.ret, mail.envid, rcpt.notify) == (None, None, None)


def test_lmtp_per_recipient_results(client_kind: str, handler: ParamsRecorder) -> None:
    config = ServerConfig(hostname="lmtp.test", lmtp=True)
    recipients = ["lmtp-refuse@example.net", "nobody@example.net", "ok1@example.net", "ok2@x.net"]
    with run_server(SERVER, handler, config=config) as running, open_client(
        client_kind, running.host, running.port, lmtp=True
    ) as client:
        result = client.send_message(TEXT, "a@example.org", recipients)
        assert result.accepted == ("ok1@example.net", "ok2@x.net")
        assert {rcpt: reply.code for rcpt, reply in result.refused.items()} == {
            "lmtp-refuse@example.net": 550,  # refused after the data, by LMTP's own reply
            "nobody@example.net": 550,  # refused at RCPT
        }
        assert result.refused["lmtp-refuse@example.net"].enhanced == "5.2.1"
        assert result.data_reply is None  # no single reply in LMTP
        with pytest.raises(SMTPDataError) as refused:
            client.send_message(TEXT, "a@example.org", ["lmtp-refuse@example.net"])
        assert refused.value.code == 550
        assert refused.value.result.refused["lmtp-refuse@example.net"].enhanced == "5.2.1"


def test_lmtp_refusal_after_an_accepted_recipient(handler: ParamsRecorder) -> None:
    """Regression: the server once answered every LMTP recipient with the first one's 250."""
    config = ServerConfig(hostname="lmtp.test", lmtp=True)
    with run_server(SERVER, handler, config=config) as running, open_client(
        "sockets", running.host, running.port, lmtp=True
    ) as client:
        result = client.send_message(TEXT, "a@example.org", ["ok@x.net", "lmtp-refuse@x.net"])
        assert result.accepted == ("ok@x.net",)
        assert result.refused["lmtp-refuse@x.net"].code == 550


def test_refusals_are_typed_and_keep_the_session(client_kind: str, handler: ParamsRecorder) -> None:
    with run_server(SERVER, handler) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        with pytest.raises(SMTPRecipientsRefused) as recipients:
            client.send_message(TEXT, "a@example.org", ["nobody@a.net", "nobody@b.net"])
        assert recipients.value.code == 550
        assert set(recipients.value.refused) == {"nobody@a.net", "nobody@b.net"}
        with pytest.raises(SMTPSenderRefused) as sender:
            client.send_message(TEXT, handler.fail_mail_from, ["b@example.net"])
        assert sender.value.code == 451  # the handler raised: 451 4.3.0
        assert sender.value.reply.enhanced == "4.3.0"
        assert sender.value.refused["b@example.net"].code in (451, 503)
        with pytest.raises(SMTPDataError) as data:
            client.send_message(b"X-Fail: yes\r\n\r\nx\r\n", "a@example.org", ["b@example.net"])
        assert data.value.code == 451
        assert client.rset().code == 250
        assert client.send_message(TEXT, "a@example.org", ["b@example.net"]).ok
    assert [m.content for m in handler.messages] == [TEXT]


def test_binary_not_offered(client_kind: str, handler: ParamsRecorder) -> None:
    config = ServerConfig(binarymime=False)
    with run_server(SERVER, handler, config=config) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        with pytest.raises(SMTPNotSupportedError, match="BINARYMIME"):
            client.send_message(TEXT, "a@example.org", ["b@example.net"], binary=True)
        # without BINARYMIME a body with bare LF goes CRLF-normalised over BDAT
        assert client.send_message(b"a\nb\n", "a@example.org", ["b@example.net"]).ok
    assert [m.content for m in handler.messages] == [b"a\r\nb\r\n"]


@pytest.mark.parametrize("chunking", [True, False], ids=["bdat", "data"])
def test_large_message(client_kind: str, handler: ParamsRecorder, chunking: bool) -> None:
    """Several BDAT chunks (1 MiB each by default) or one long DATA, byte-exact."""
    line = b"0123456789" * 9 + b"\r\n"
    body = b"Subject: large\r\n\r\n" + line * 30_000 + b".\r\n..\r\nend\r\n"  # ~2.8 MB
    config = ServerConfig(chunking=chunking)
    with run_server(SERVER, handler, config=config) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        assert client.send_message(body, "a@example.org", ["b@example.net"]).ok
    assert handler.messages[0].content == body
    assert handler.mail_params[0].size == len(body)


def test_one_operation_at_a_time(handler: ParamsRecorder) -> None:
    """Two tasks sharing an async client: the second operation is refused, not interleaved."""
    import asyncio  # noqa: PLC0415

    from transports.asyncio import Client  # noqa: PLC0415

    async def race(port: int) -> list[object]:
        async with Client("127.0.0.1", port, timeout=10) as client:
            outcomes = await asyncio.gather(
                client.send_message(TEXT, "a@example.org", ["b@example.net"]),
                client.noop(),
                return_exceptions=True,
            )
            assert (await client.noop()).code == 250  # the session is intact
            return outcomes

    with run_server(SERVER, handler) as running:
        sent, second = asyncio.run(race(running.port))
    assert not isinstance(sent, BaseException)
    assert isinstance(second, RuntimeError)
    assert [m.content for m in handler.messages] == [TEXT]


def test_sender_refused_without_pipelining(client_kind: str, handler: ParamsRecorder) -> None:
    """Without PIPELINING no RCPT follows a refused MAIL; every recipient still gets an outcome
    (the MAIL refusal), so ``refused`` never looks like a success."""
    config = ServerConfig(pipelining=False)
    with run_server(SERVER, handler, config=config) as running, open_client(
        client_kind, running.host, running.port
    ) as client:
        with pytest.raises(SMTPSenderRefused) as refused:
            client.send_message(TEXT, handler.fail_mail_from, ["b@example.net", "c@example.net"])
        assert refused.value.result.transaction.recipient_replies == ()  # no RCPT was sent
        assert {r: reply.code for r, reply in refused.value.refused.items()} == {
            "b@example.net": 451,
            "c@example.net": 451,
        }
        assert not refused.value.result.ok
    assert handler.rcpt_params == []
