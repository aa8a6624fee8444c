"""Stateful test (hypothesis ``RuleBasedStateMachine``): a client core against a server core.

Random sequences of EHLO, STARTTLS (simulated: ``tls_started()`` on both sides), AUTH PLAIN and
LOGIN with right and wrong passwords, whole-message transactions (DATA or BDAT, chosen by the
client from the server's offer), hand-made DATA and BDAT transactions, RSET, NOOP, VRFY and
QUIT, while the server application accepts or refuses each decision at random. Checked after
every step:

* replies match commands one to one: each command the application issued produced exactly the
  events it must (RFC 2920 pipelining keeps them in order), nothing more;
* every message the client was told was accepted (250 after the final dot / BDAT LAST) is stored
  by the server application byte-exact, and nothing else is stored;
* neither side raised a protocol error, and the session ends only by QUIT.
"""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from esmtp_core import (
    AuthResult,
    ClientConfig,
    ClientCredentials,
    ClientState,
    CommandReply,
    DataReply,
    EhloReply,
    ServerConfig,
    StartTLSReply,
    TransactionResult,
)

from ._pair import Pair, StoredMessage
from ._sessions import examples

TEXT_LINE = st.one_of(
    st.sampled_from([b"", b".", b"..", b".hidden", b"Subject: x", b"caf\xc3\xa9", b"\tfold"]),
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
#: Canonical text bodies: CRLF line endings and a final CRLF (identical through DATA and BDAT).
TEXT_BODY = st.lists(TEXT_LINE, max_size=12).map(
    lambda lines: b"".join(line + b"\r\n" for line in lines)
)
BINARY_BODY = st.binary(max_size=300)
ADDRESS = st.sampled_from(["a@example.org", "b@example.net", "\u00e9l\u00e8ve@example.fr", ""])
RECIPIENTS = st.lists(
    st.sampled_from(["r1@example.net", "r2@example.net", "r3@x.org"]),
    min_size=1,
    max_size=3,
    unique=True,  # the client reports outcomes per recipient address
)


class ClientAgainstServer(RuleBasedStateMachine):
    """The state machine; ``self.pair`` is rebuilt for every run by :meth:`setup`."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: deque[bool] = deque()
        self.expected: list[StoredMessage] = []
        self.seen = 0
        self.quit = False

    def _decide(self, event: object) -> bool:
        return self.answers.popleft() if self.answers else True

    @initialize(
        chunking=st.booleans(),
        binarymime=st.booleans(),
        pipelining=st.booleans(),
        client_pipelining=st.booleans(),
    )
    def setup(
        self, chunking: bool, binarymime: bool, pipelining: bool, client_pipelining: bool
    ) -> None:
        self.binary_ok = chunking and binarymime
        self.pair = Pair(
            ClientConfig(
                local_hostname="c.example",
                use_pipelining=client_pipelining,
                bdat_chunk_size=64,
                helo_fallback=False,  # a refused EHLO stays refused: the rule can retry
            ),
            ServerConfig(
                hostname="mx.example",
                starttls=True,
                chunking=chunking,
                binarymime=binarymime,
                pipelining=pipelining,
                max_errors=1000,
            ),
            decide=self._decide,
        )
        self.pump()
        assert self.new_events() == ["Greeting"]

    # --- helpers --------------------------------------------------------------------------------

    def pump(self) -> None:
        self.pair.pump()
        assert self.pair.server_error is None, self.pair.server_error

    def new_events(self) -> list[str]:
        events = self.pair.client_events[self.seen :]
        self.seen = len(self.pair.client_events)
        return [type(event).__name__ for event in events]

    def last(self) -> object:
        return self.pair.client_events[-1]

    @property
    def client(self):  # type: ignore[no-untyped-def]  # ClientConnection; keeps rules short
        return self.pair.client

    def ready(self) -> bool:
        return not self.quit and self.client.state is ClientState.READY

    # --- rules ----------------------------------------------------------------------------------

    @precondition(lambda self: not self.quit and self.client.state is ClientState.GREETED)
    @rule(accept=st.booleans())
    def hello(self, accept: bool) -> None:
        self.answers.append(accept)
        self.client.hello()
        self.pump()
        assert self.new_events() == ["EhloReply"]
        reply = self.last()
        assert isinstance(reply, EhloReply)
        assert reply.ok == accept

    @precondition(lambda self: self.ready() and not self.client.tls_active)
    @rule()
    def starttls(self) -> None:
        self.client.starttls()
        self.pump()
        assert self.new_events() == ["StartTLSReply"]
        reply = self.last()
        assert isinstance(reply, StartTLSReply)
        assert reply.ready
        assert self.client.tls_active
        assert self.pair.server.tls_active
        assert self.client.state is ClientState.GREETED  # RFC 3207 §4.2: start over with EHLO

    @precondition(
        lambda self: self.ready()
        and self.client.tls_active
        and self.client.authenticated is None
    )
    @rule(mechanism=st.sampled_from(["PLAIN", "LOGIN"]), right=st.booleans())
    def auth(self, mechanism: str, right: bool) -> None:
        self.answers.append(right)
        password = "secret" if right else "wrong"
        self.client.auth(ClientCredentials(username="user", password=password), mechanism)
        self.pump()
        assert self.new_events() == ["AuthResult"]
        result = self.last()
        assert isinstance(result, AuthResult)
        assert result.ok == right
        assert (self.pair.server.authenticated is not None) == right

    @precondition(lambda self: self.ready())
    @rule(
        sender=ADDRESS,
        recipients=RECIPIENTS,
        text=TEXT_BODY,
        binary=BINARY_BODY,
        use_binary=st.booleans(),
        answers=st.lists(st.booleans(), max_size=5),
    )
    def send_message(
        self,
        sender: str,
        recipients: list[str],
        text: bytes,
        binary: bytes,
        use_binary: bool,
        answers: list[bool],
    ) -> None:
        use_binary = use_binary and self.binary_ok
        body = binary if use_binary else text
        self.answers.extend(answers)
        # BINARYMIME only on request: without it bare CR/LF would be made CRLF.
        self.client.send_message(sender, recipients, body, binary=use_binary)
        self.pump()
        self.answers.clear()
        assert self.new_events() == ["TransactionResult"]
        result = self.last()
        assert isinstance(result, TransactionResult)
        if result.ok:
            self.expected.append(StoredMessage(sender, tuple(result.accepted), body))

    @precondition(lambda self: self.ready())
    @rule(
        recipients=RECIPIENTS,
        body=TEXT_BODY,
        answers=st.lists(st.booleans(), max_size=5),
        pieces=st.integers(1, 4),
    )
    def manual_data(
        self, recipients: list[str], body: bytes, answers: list[bool], pieces: int
    ) -> None:
        self.answers.extend(answers)
        self.client.mail("m@example.org")
        for rcpt in recipients:
            self.client.rcpt(rcpt)
        self.client.data()
        step = max(1, len(body) // pieces)
        for start in range(0, len(body), step):
            self.client.send_body(body[start : start + step])
        self.client.end_body()
        self.pump()
        self.answers.clear()
        events = self.new_events()
        window = self.pair.client_events[-len(events) :]
        count = len(recipients) + 2  # MAIL, each RCPT, DATA: one reply each, in order
        assert events[:count] == ["CommandReply"] * count, events
        verbs = [e.verb for e in window[:count] if isinstance(e, CommandReply)]
        assert verbs == ["MAIL", *(["RCPT"] * len(recipients)), "DATA"]
        data_reply = window[count - 1]
        assert isinstance(data_reply, CommandReply)
        tail = events[count:]
        assert tail == (["DataReply"] if data_reply.reply.code == 354 else []), events
        if tail:
            final = self.last()
            assert isinstance(final, DataReply)
            accepted = [
                e.argument
                for e in window[:count]
                if isinstance(e, CommandReply) and e.verb == "RCPT" and e.ok
            ]
            if final.ok and accepted:
                self.expected.append(StoredMessage("m@example.org", tuple(accepted), body))

    @precondition(lambda self: self.ready() and self.client.capabilities.chunking)
    @rule(
        chunks=st.lists(st.binary(max_size=50), min_size=1, max_size=4),
        answers=st.lists(st.booleans(), max_size=4),
    )
    def manual_bdat(self, chunks: list[bytes], answers: list[bool]) -> None:
        self.answers.extend(answers)
        self.client.mail("b@example.org")
        self.client.rcpt("r@example.net")
        for index, chunk in enumerate(chunks):
            self.client.bdat(chunk, last=index == len(chunks) - 1)
        self.pump()
        self.answers.clear()
        events = self.new_events()
        assert events == ["CommandReply"] * (1 + len(chunks)) + ["DataReply"], events
        window = self.pair.client_events[-len(events) :]
        mail, rcpt, final = window[0], window[1], window[-1]
        assert isinstance(mail, CommandReply)
        assert isinstance(rcpt, CommandReply)
        assert isinstance(final, DataReply)
        if final.ok:
            assert mail.ok
            assert rcpt.ok
            content = b"".join(chunks)
            self.expected.append(StoredMessage("b@example.org", ("r@example.net",), content))

    @precondition(lambda self: self.ready())
    @rule(verb=st.sampled_from(["RSET", "NOOP", "VRFY"]))
    def simple(self, verb: str) -> None:
        if verb == "RSET":
            self.client.rset()
        elif verb == "NOOP":
            self.client.noop()
        else:
            self.answers.append(True)
            self.client.vrfy("postmaster")
        self.pump()
        assert self.new_events() == ["CommandReply"]
        reply = self.last()
        assert isinstance(reply, CommandReply)
        assert reply.verb == verb

    @precondition(lambda self: not self.quit and self.client.state is ClientState.READY)
    @rule()
    def quit_session(self) -> None:
        self.client.quit()
        self.pump()
        events = self.new_events()
        assert events[0] == "CommandReply"
        assert events[1:] in ([], ["SessionEnded"])
        assert self.client.closed
        assert self.pair.server.closed
        self.quit = True

    @rule()
    def idle(self) -> None:
        """Nothing to send: both sides stay quiet (and the run can go on after QUIT)."""
        self.pump()
        assert self.new_events() == []

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def messages_byte_exact(self) -> None:
        if hasattr(self, "pair"):
            assert self.pair.app.messages == self.expected

    @invariant()
    def open_unless_quit(self) -> None:
        if hasattr(self, "pair"):
            assert self.client.closed == self.quit


ClientAgainstServer.TestCase.settings = settings(
    max_examples=examples(60),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestClientAgainstServer = ClientAgainstServer.TestCase
