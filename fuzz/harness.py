"""Drivers shared by the atheris fuzzers and the hostile-peers tests.

The harness plays the embedding application of a sans-I/O core: it feeds bytes split at chosen
points, answers every decision with a chosen accept/reject, simulates the TLS handshake when the
core asks for one, and checks the core's promises after every step:

* only the documented exception types escape (RFC 5321 §4.5.3 limits are enforced with replies
  or with :class:`~esmtp_core.RemoteProtocolError`, never with a crash);
* the server never pauses with nothing to answer (that would be a hang);
* everything the server writes is a well-formed RFC 5321 §4.2 reply line;
* the bytes the core keeps buffered stay below a bound that does not grow with the input.

Input format of one fuzz case (also used by the seed corpus, see ``make_corpus.py``)::

    byte 0      configuration flags (see :func:`server_config_from_flags`)
    bytes 1-2   decision mask: decision number i is rejected when bit (i % 16) is set
    byte 3      low 2 bits: the stream is fed 1, 4, 16 or 64 times (memory-bound checks; at
                most 4 times byte by byte); high 4 bits: split mode (0 whole, 1 byte by byte,
                n: pseudo-random pieces of up to 2**n octets)
    bytes 4-    the peer's byte stream
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from esmtp_core import (
    NEED_DATA,
    PAUSED,
    AuthSecretLookup,
    BareLineEndingPolicy,
    ClientConfig,
    ClientConnection,
    ClientCredentials,
    ConnectionClosed,
    Greeting,
    LocalProtocolError,
    Quit,
    RemoteProtocolError,
    Reply,
    ServerConfig,
    ServerConnection,
    SessionEnded,
    StartTLS,
    StartTLSReply,
    UnknownCommand,
)

HEADER_SIZE = 4

#: RFC 5321 §4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
#:                             Reply-code [ SP textstring ] CRLF
#: (we allow an empty text after a space or hyphen, which the core may emit for an empty line).
REPLY_LINE_RE = re.compile(rb"[2-5][0-5][0-9](?:[ -][^\r\n]*)?\r\n")

#: Whatever the input, a core may keep at most this many bytes beyond its configured line and
#: chunk limits (names, capability strings, small queues).
BOUND_SLACK = 64 * 1024
#: Walk the core's objects after this many fed bytes (walking after every byte of a
#: byte-by-byte feed would make the fuzzer crawl; a buffer that grows is caught all the same).
CHECK_EVERY = 4096


class HarnessFailure(AssertionError):
    """A promise of the core was broken (what the fuzzer reports as a crash)."""


@dataclass(slots=True)
class Case:
    """One decoded fuzz case."""

    flags: int
    decision_mask: int
    repeat: int
    split_mode: int
    stream: bytes

    @classmethod
    def decode(cls, data: bytes) -> Case:
        """Split raw fuzzer bytes into header fields and the stream (short inputs pad with 0)."""
        head = data[:HEADER_SIZE].ljust(HEADER_SIZE, b"\0")
        return cls(
            flags=head[0],
            decision_mask=head[1] | head[2] << 8,
            repeat=1 << (2 * (head[3] & 0x3)),
            split_mode=head[3] >> 4,
            stream=data[HEADER_SIZE:],
        )

    def rejects(self, decision_number: int) -> bool:
        """Whether the application answers decision ``decision_number`` negatively."""
        return bool(self.decision_mask >> (decision_number % 16) & 1)

    def pieces(self) -> Iterator[bytes]:
        """The stream, repeated and split as the header asks (byte by byte at most 4 times)."""
        data = self.stream * (min(self.repeat, 4) if self.split_mode == 1 else self.repeat)
        if self.split_mode == 0 or not data:
            if data:
                yield data
            return
        if self.split_mode == 1:
            for index in range(len(data)):
                yield data[index : index + 1]
            return
        rng = random.Random(self.split_mode)
        top = 1 << self.split_mode
        start = 0
        while start < len(data):
            size = rng.randint(1, top)
            yield data[start : start + size]
            start += size


def server_config_from_flags(flags: int) -> ServerConfig:
    """A small-limits server configuration chosen by the flag bits.

    bit 0 LMTP, bit 1 STARTTLS offered, bit 2 AUTH allowed without TLS, bit 3 normalise bare
    line endings, bit 4 MAIL requires AUTH, bit 5 an extension verb ``XCLIENT`` is registered,
    bit 6 EXPN enabled, bit 7 tiny limits (few errors, commands and recipients).
    """
    tiny = bool(flags & 0x80)
    return ServerConfig(
        hostname="mx.example",
        lmtp=bool(flags & 0x01),
        starttls=bool(flags & 0x02),
        auth_require_tls=not flags & 0x04,
        bare_line_endings=(
            BareLineEndingPolicy.NORMALIZE if flags & 0x08 else BareLineEndingPolicy.REJECT
        ),
        auth_required=bool(flags & 0x10),
        extra_commands=frozenset({"XCLIENT"}) if flags & 0x20 else frozenset(),
        expn=bool(flags & 0x40),
        max_message_size=300 if tiny else 100_000,
        max_recipients=3 if tiny else 100,
        max_errors=3 if tiny else 20,
        max_commands=20 if tiny else 10_000,
        max_command_line_length=512,
        max_data_line_length=200 if tiny else 1000,
        max_auth_line_length=1024,
        max_chunk_size=512,
    )


def retained_bytes(root: object, max_depth: int = 5) -> int:
    """Bytes held in ``bytes``/``bytearray``/``str`` objects reachable from ``root``.

    Walks attributes (``__dict__`` and ``__slots__``) and containers a few levels deep, without
    knowing the core's private field names, so the check survives refactoring of its buffers.
    Shared immutable objects (the configuration) are counted too; the bound has slack for them.
    """
    seen: set[int] = set()
    total = 0
    stack: list[tuple[object, int]] = [(root, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray | str):
            total += len(obj)
            continue
        if isinstance(obj, memoryview):
            total += obj.nbytes
            continue
        if depth >= max_depth or isinstance(obj, int | float | bool | type) or obj is None:
            continue
        children: list[object] = []
        if isinstance(obj, dict):
            children.extend(obj.keys())
            children.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            children.extend(obj)
        elif hasattr(obj, "__iter__") and type(obj).__module__ == "collections":
            children.extend(obj)  # deque and friends
        else:
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict):
                children.extend(attrs.values())
            for klass in type(obj).__mro__:
                for name in getattr(klass, "__slots__", ()):
                    if hasattr(obj, name):
                        children.append(getattr(obj, name))
        stack.extend((child, depth + 1) for child in children)
    return total


def server_bound(config: ServerConfig) -> int:
    """Most bytes a server core may retain between feeds, whatever the input."""
    longest_line = max(
        config.max_command_line_length,
        config.max_auth_line_length,
        config.max_data_line_length or 0,
    )
    return 4 * longest_line + 2 * config.max_chunk_size + BOUND_SLACK


def check_reply_bytes(out: bytes) -> None:
    """Every byte the server emits belongs to a well-formed reply line (RFC 5321 §4.2)."""
    position = 0
    while position < len(out):
        match = REPLY_LINE_RE.match(out, position)
        if match is None:
            raise HarnessFailure(f"malformed reply bytes at {position}: {out[position:][:80]!r}")
        position = match.end()


@dataclass(slots=True)
class ServerRun:
    """What happened in one driven server session."""

    events: list[object] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    remote_error: RemoteProtocolError | None = None
    closed: bool = False


def _answer_server(conn: ServerConnection, reject: bool) -> None:
    """Answer the pending decision positively or negatively."""
    pending = conn.pending
    if isinstance(pending, UnknownCommand):
        if reject:
            conn.send_reply(Reply.make(502, "5.5.1", "Not here"))
        else:
            conn.send_reply(Reply.make(250, "2.0.0", "Done"))
    elif isinstance(pending, AuthSecretLookup):
        conn.provide_secret(None if reject else "secret")
    elif reject:
        conn.reject()
    else:
        conn.accept()


def run_server_case(case: Case) -> ServerRun:
    """Run one decoded fuzz case against a fresh server core."""
    return drive_server(
        case.pieces(), config=server_config_from_flags(case.flags), rejects=case.rejects
    )


def drive_server(
    pieces: Iterable[bytes],
    *,
    config: ServerConfig,
    rejects: Callable[[int], bool] = lambda number: False,
    check_bound: bool = True,
    answer_late: bool = False,
) -> ServerRun:
    """Feed ``pieces`` to a fresh server core, answering decision number ``i`` negatively when
    ``rejects(i)``, and check the core's promises after every piece.

    With ``answer_late`` every decision is answered only after the next piece arrived (an
    application still thinking while the client pipelines on, RFC 2920); the bound check is then
    off, since a paused core rightly buffers what the transport keeps feeding it.

    Raises :class:`HarnessFailure` for a broken promise; any exception other than
    :class:`~esmtp_core.RemoteProtocolError` propagates (a bug in the core).
    """
    conn = ServerConnection(config)
    run = ServerRun()
    conn.greet()
    decisions = 0
    tls_wanted = False
    deferred = False
    bound = server_bound(config)
    check_bound = check_bound and not answer_late

    def drain(final: bool = False) -> bool:
        """Process events until the core wants more data; False once the session is over."""
        nonlocal tls_wanted, decisions, deferred
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                run.remote_error = exc
                return False
            if event is NEED_DATA:
                return not conn.closed
            if event is PAUSED:
                if conn.closed:
                    return False
                if conn.pending is not None:
                    if answer_late and not final and not deferred:
                        deferred = True
                        return True  # think it over while the next piece arrives
                    deferred = False
                    _answer_server(conn, rejects(decisions))
                    decisions += 1
                elif tls_wanted:
                    tls_wanted = False
                    conn.tls_started()
                else:
                    raise HarnessFailure("PAUSED with no pending decision and no TLS to start")
                continue
            run.events.append(event)
            if isinstance(event, StartTLS):
                tls_wanted = True
            elif isinstance(event, Quit | ConnectionClosed):
                return False

    alive = drain()
    unchecked = CHECK_EVERY  # the first piece is always checked
    for piece in pieces:
        if not alive:
            break
        conn.receive_data(piece)
        alive = drain()
        out = conn.data_to_send()
        check_reply_bytes(out)
        run.output += out
        unchecked += len(piece)
        if check_bound and alive and unchecked >= CHECK_EVERY:
            unchecked = 0
            held = retained_bytes(conn)
            if held > bound:
                raise HarnessFailure(f"server retains {held} bytes (bound {bound})")
    if alive:
        alive = drain(final=True)
    if alive:
        conn.receive_data(b"")
        drain(final=True)
    out = conn.data_to_send()
    check_reply_bytes(out)
    run.output += out
    run.closed = conn.closed
    return run


# --- client side -----------------------------------------------------------------------------

CREDENTIALS = ClientCredentials(username="user", password="secret")  # noqa: S106  (a test login)
#: Bodies the scripted application sends: dots at line starts, 8-bit text, bare line endings
#: (the client must normalise them), no final newline, NUL (binary).
BODIES = (
    b"Subject: t\r\n\r\nhello\r\n",
    b".\r\n..\r\n.x\r\n",
    b"bare\nlf\rcr\r\n.\n.\r",
    b"caf\xc3\xa9 \xff\xfe no final newline",
    b"",
    b"nul\x00byte\r\n" * 3,
)


def client_config_from_flags(flags: int) -> ClientConfig:
    """A client configuration chosen by the flag bits.

    bit 0 LMTP, bit 1 no PIPELINING, bit 2 no CHUNKING, bit 3 BINARYMIME allowed, bit 4 AUTH
    without TLS allowed, bit 5 no HELO fallback, bit 6 tiny BDAT chunks, bit 7 no SIZE.
    """
    return ClientConfig(
        local_hostname="client.example",
        lmtp=bool(flags & 0x01),
        use_pipelining=not flags & 0x02,
        use_chunking=not flags & 0x04,
        use_binarymime=bool(flags & 0x08),
        allow_insecure_auth=bool(flags & 0x10),
        helo_fallback=not flags & 0x20,
        bdat_chunk_size=7 if flags & 0x40 else 1_048_576,
        use_size=not flags & 0x80,
        max_reply_line_length=512,
        max_reply_lines=50,
    )


def client_bound(config: ClientConfig) -> int:
    """Most bytes a client core may retain between feeds (its bodies here are tiny)."""
    return 2 * config.max_reply_line_length * (config.max_reply_lines + 2) + BOUND_SLACK


#: RFC 3030 chunks are framed by octet counts, so a CRLF of the message may straddle two chunks:
#: ``...\r`` + ``BDAT n\r\n`` + ``\n...``. That CR is not bare in the message; unframe it first.
_SPLIT_CRLF_RE = re.compile(rb"\rBDAT [0-9]+(?: LAST)?\r\n\n")


def check_no_bare_line_endings(out: bytes) -> None:
    """No CR without LF after it and no LF without CR before it (RFC 5321 §2.3.8), on the wire
    and in the message content a BDAT chunk boundary may cut."""
    out = _SPLIT_CRLF_RE.sub(b"\r\n", out)
    if out.count(b"\r") != out.count(b"\r\n") or out.count(b"\n") != out.count(b"\r\n"):
        at = next(
            i
            for i, byte in enumerate(out)
            if (byte == 13 and out[i + 1 : i + 2] != b"\n")
            or (byte == 10 and (i == 0 or out[i - 1] != 13))
        )
        context = out[max(0, at - 40) : at + 40]
        raise HarnessFailure(f"bare CR or LF on the wire at {at}: {context!r}")


@dataclass(slots=True)
class ClientRun:
    """What happened in one driven client session."""

    events: list[object] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    remote_error: RemoteProtocolError | None = None
    local_errors: int = 0


class ScriptedApplication:
    """The embedding code of a client core, choosing its next command pseudo-randomly from
    ``seed`` after every event (the fuzzer controls the seed). Commands the core refuses with
    :class:`~esmtp_core.LocalProtocolError` are simply counted: refusing is the core's right."""

    ACTIONS = 12

    def __init__(self, conn: ClientConnection, seed: int, run: ClientRun) -> None:
        self.conn = conn
        self.rng = random.Random(seed)
        self.run = run

    def act(self) -> None:
        """Issue one command (or none)."""
        conn = self.conn
        choice = self.rng.randrange(self.ACTIONS + 2)
        body = self.rng.choice(BODIES)
        try:
            if choice == 0:
                conn.hello()
            elif choice == 1:
                conn.starttls()
            elif choice == 2:
                conn.auth(CREDENTIALS, self.rng.choice([None, "PLAIN", "LOGIN"]))
            elif choice == 3:
                conn.send_message("a@example.org", ["b@example.net", "c@example.net"], body)
            elif choice == 4:
                conn.start_transaction("a@example.org", ["b@example.net"])
                conn.send_body(body[:5])
                conn.send_body(body[5:])
                conn.end_body()
            elif choice == 5:
                conn.mail("a@example.org")
                conn.rcpt("b@example.net")
                conn.data()
                conn.send_body(body)
                conn.end_body()
            elif choice == 6:
                conn.mail("")
                conn.rcpt("b@example.net")
                conn.bdat(b"part one\r\n")
                conn.bdat(b"part two\r\n", last=True)
            elif choice == 7:
                conn.noop()
            elif choice == 8:
                conn.rset()
            elif choice == 9:
                conn.vrfy("bob")
            elif choice == 10:
                conn.quit()
            elif choice == 11:
                conn.send_message("\u00e9@example.org", ["b@example.net"], body)
            # choices 12 and 13: wait for the server
        except LocalProtocolError:
            self.run.local_errors += 1

    def on_event(self, event: object) -> None:
        """React: greet after the greeting, start TLS when the server is ready, then act."""
        conn = self.conn
        if isinstance(event, Greeting) and event.ok:
            try:
                conn.hello()
            except LocalProtocolError:
                self.run.local_errors += 1
            return
        if isinstance(event, StartTLSReply) and event.ready:
            conn.tls_started()
            return
        self.act()


def run_client_case(case: Case) -> ClientRun:
    """Run one decoded fuzz case against a fresh client core."""
    return drive_client(
        case.pieces(), config=client_config_from_flags(case.flags), seed=case.decision_mask
    )


def drive_client(
    pieces: Iterable[bytes], *, config: ClientConfig, seed: int, check_bound: bool = True
) -> ClientRun:
    """Feed a hostile server's ``pieces`` to a fresh client core driven by a
    :class:`ScriptedApplication`, and check the core's promises after every piece.

    LocalProtocolError from a command method is the core refusing a command (allowed);
    RemoteProtocolError ends the run; anything else propagates (a bug).
    """
    conn = ClientConnection(config)
    run = ClientRun()
    app = ScriptedApplication(conn, seed, run)
    bound = client_bound(config)
    binary = config.use_binarymime

    def flush() -> None:
        out = conn.data_to_send()
        if not binary:
            check_no_bare_line_endings(out)
        run.output += out

    def drain() -> bool:
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                run.remote_error = exc
                return False
            flush()
            if event is NEED_DATA:
                return True
            if event is PAUSED:
                raise HarnessFailure("client PAUSED although the application started TLS")
            run.events.append(event)
            if isinstance(event, SessionEnded):
                return False
            app.on_event(event)
            flush()

    app.act()  # commands before the greeting must be refused, not queued wrongly
    flush()
    alive = drain()
    unchecked = CHECK_EVERY  # the first piece is always checked
    for piece in pieces:
        if not alive:
            break
        conn.receive_data(piece)
        alive = drain()
        unchecked += len(piece)
        if check_bound and alive and unchecked >= CHECK_EVERY:
            unchecked = 0
            held = retained_bytes(conn)
            if held > bound:
                raise HarnessFailure(f"client retains {held} bytes (bound {bound})")
    if alive:
        conn.receive_data(b"")
        drain()
    return run
