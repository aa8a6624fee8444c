"""Command-line peers: Postfix's smtp-sink and smtp-source, swaks, msmtp and openssl s_client.

Each runner is bounded in time and returns a :class:`ToolResult`; servers are context managers
that stop what they started. Import from :mod:`tests.interop.peers`, which re-exports these.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._common import (
    LOOPBACK,
    PeerError,
    PeerUnavailable,
    ToolResult,
    free_port,
    require_program,
    run_tool,
    stop_process,
    wait_for_port,
)

# --------------------------------------------------------------------------- smtp-sink / source


@dataclass(frozen=True)
class SinkMessage:
    """One transaction captured by ``smtp-sink -d``: envelope arguments and content.

    ``content`` is the message as smtp-sink wrote it: header and body with LF line endings (the
    dump format ends each line with a newline; smtp-sink strips the CRLF), dot-unstuffed.
    """

    helo: str | None
    mail_args: str
    rcpt_args: tuple[str, ...]
    content: bytes


@dataclass
class SmtpSink:
    """A running ``smtp-sink``; see :func:`smtp_sink`."""

    port: int
    process: subprocess.Popen[bytes]
    dump_dir: Path | None
    host: str = LOOPBACK

    def messages(self) -> list[SinkMessage]:
        """Parse every complete dump file written so far (``dump=True``), in file-name order.

        smtp-sink creates a capture file when a transaction starts and appends to it as data
        arrives; a file counts as complete once it parses and ends with the dump format's final
        empty line. Use :meth:`wait_for_messages` after the client got its reply.
        """
        return [message for _, message in self._complete()]

    def _complete(self) -> list[tuple[tuple[str, int], SinkMessage]]:
        if self.dump_dir is None:
            raise PeerError("smtp-sink was started without dump=True")
        found: list[tuple[tuple[str, int], SinkMessage]] = []
        for path in sorted(p for p in self.dump_dir.rglob("*") if p.is_file()):
            raw = path.read_bytes()
            if not raw.endswith(b"\n\n"):
                continue
            try:
                found.append(((path.name, len(raw)), _parse_sink_dump(raw)))
            except ValueError:  # still being written
                continue
        return found

    def wait_for_messages(self, count: int, *, timeout: float = 10.0) -> list[SinkMessage]:
        """Wait until ``count`` complete messages were dumped and the files stopped changing
        (two polls 50 ms apart see the same names and sizes), then return them."""
        deadline = time.monotonic() + timeout
        previous: list[tuple[str, int]] | None = None
        while True:
            found = self._complete()
            keys = [key for key, _ in found]
            if len(found) >= count and keys == previous:
                return [message for _, message in found]
            if time.monotonic() >= deadline:
                raise PeerError(f"smtp-sink dumped {len(found)} of {count} after {timeout}s")
            previous = keys
            time.sleep(0.05)


def _parse_sink_dump(raw: bytes) -> SinkMessage:
    """Split one ``smtp-sink -d`` file into its generated headers and the captured message."""
    helo: str | None = None
    mail_args = ""
    rcpts: list[str] = []
    pos = 0
    while True:
        eol = raw.index(b"\n", pos)
        line = raw[pos:eol].decode("utf-8", "replace")
        pos = eol + 1
        if line.startswith("X-Helo-Args: "):
            helo = line[len("X-Helo-Args: ") :]
        elif line.startswith("X-Mail-Args: "):
            mail_args = line[len("X-Mail-Args: ") :]
        elif line.startswith("X-Rcpt-Args: "):
            rcpts.append(line[len("X-Rcpt-Args: ") :])
        elif line.startswith("Received: "):
            # The generated Received field is three lines; the message follows it.
            for _ in range(2):
                pos = raw.index(b"\n", pos) + 1
            break
    content = raw[pos:]
    # The dump format appends one empty line after the message.
    content = content.removesuffix(b"\n")
    return SinkMessage(helo=helo, mail_args=mail_args, rcpt_args=tuple(rcpts), content=content)


@contextlib.contextmanager
def smtp_sink(
    directory: Path | None = None,
    *,
    port: int | None = None,
    dump: bool = False,
    hostname: str = "sink.test",
    extra_args: Sequence[str] = (),
    backlog: int = 100,
) -> Iterator[SmtpSink]:
    """Run Postfix's ``smtp-sink`` on ``127.0.0.1:port`` until the block ends.

    With ``dump=True`` each transaction is captured into ``directory/sink-dump`` (``-d``) for
    byte checks; that costs disk time, so leave it off for load tests. As root, smtp-sink must
    drop privileges (``-u``); it then runs as ``postfix`` (or ``nobody``), so the dump directory is
    handed to that user. ``extra_args`` go before the address (e.g. ``-p`` to hide PIPELINING,
    ``-M 10`` to exit after 10 messages).
    """
    binary = require_program("smtp-sink")
    port = port or free_port()
    args = [binary, "-4", "-h", hostname]
    run_as = _unprivileged_user() if os.geteuid() == 0 else None
    if run_as is not None:
        args += ["-u", run_as]
    dump_dir: Path | None = None
    if dump:
        if directory is None:
            raise ValueError("dump=True needs a directory")
        dump_dir = directory / "sink-dump"
        dump_dir.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            shutil.chown(dump_dir, user=run_as)
        # A template without "/" puts every capture file flat in dump_dir; the random suffix makes
        # names unique, the leading time keeps them in (coarse) arrival order.
        args += ["-d", f"{dump_dir}/%Y%m%d%H%M%S."]
    args += [*extra_args, f"{LOOPBACK}:{port}", str(backlog)]
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, timeout=10.0, process=process)
        yield SmtpSink(port=port, process=process, dump_dir=dump_dir)
    finally:
        stop_process(process)


def _unprivileged_user() -> str:
    """The account smtp-sink switches to when started as root."""
    import pwd  # noqa: PLC0415 - POSIX only, and only needed as root

    for name in ("postfix", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PeerUnavailable("no unprivileged user (postfix or nobody) for smtp-sink -u")


def run_smtp_source(
    port: int,
    *,
    host: str = LOOPBACK,
    sessions: int = 1,
    messages: int = 1,
    size: int | None = None,
    message_file: Path | None = None,
    recipients: int = 1,
    sender: str = "source@client.test",
    recipient: str = "sink@server.test",
    same_connection: bool = False,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> ToolResult:
    """Drive a server with Postfix's ``smtp-source`` (``-s`` parallel sessions, ``-m`` messages).

    smtp-source prints a line on stderr and exits non-zero when the server answers with anything
    but the expected positive reply (unless ``-A``), so ``check()`` proves "zero errors".
    ``size`` is the generated body length (``-l``); ``message_file`` sends a prepared message
    (``-F``, smtp-source dot-stuffs and ends lines with CRLF). ``same_connection`` is ``-d``.
    """
    args = [
        require_program("smtp-source"),
        "-4",
        "-s",
        str(sessions),
        "-m",
        str(messages),
        "-r",
        str(recipients),
        "-f",
        sender,
        "-t",
        recipient,
        "-M",
        "client.test",
    ]
    if size is not None:
        args += ["-l", str(size)]
    if message_file is not None:
        args += ["-F", str(message_file)]
    if same_connection:
        args.append("-d")
    args += [*extra_args, f"{host}:{port}"]
    return run_tool(args, timeout=timeout)


# --------------------------------------------------------------------------- swaks


TlsMode = Literal["none", "starttls", "implicit"]


@functools.cache
def swaks_supports_tls() -> bool:
    """True when swaks can do TLS (it needs the Net::SSLeay Perl module; ``swaks --support``)."""
    result = run_tool([require_program("swaks"), "--support"], timeout=30)
    return "=== TLS supported" in result.stdout + result.stderr


def run_swaks(
    port: int,
    *,
    sender: str = "sender@client.test",
    recipients: Sequence[str] = ("rcpt@server.test",),
    data: bytes | None = None,
    directory: Path | None = None,
    tls: TlsMode = "none",
    ca_file: Path | None = None,
    auth: str | None = None,
    user: str | None = None,
    password: str | None = None,
    pipeline: bool = False,
    helo: str = "client.test",
    host: str = LOOPBACK,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ToolResult:
    """Send one message with swaks and return its transcript (stdout) and exit status.

    ``data`` is the whole message; it is written to ``directory`` and passed with ``--data @FILE``.
    swaks then "fixes up" the data the way a real client does: bare LF becomes CRLF, lines starting
    with "." are dot-stuffed (RFC 5321 §4.5.2), and ``CRLF.CRLF`` is appended after the data (so
    the message's own last line break is removed here first). A message that uses CRLF and ends
    with CRLF therefore arrives byte for byte. (swaks does not send
    ``BODY=8BITMIME``; it sends 8-bit bytes as given.) ``tls`` selects ``--tls`` (STARTTLS
    required) or ``--tls-on-connect``; with ``ca_file`` the certificate is verified. ``auth`` is a
    mechanism name (``PLAIN``, ``LOGIN``, ``CRAM-MD5``) and requires that AUTH succeeds.
    """
    args = [
        require_program("swaks"),
        "--server",
        f"{host}:{port}",
        "--from",
        sender,
        "--to",
        ",".join(recipients),
        "--helo",
        helo,
        "--timeout",
        str(int(timeout)),
    ]
    if data is not None:
        if directory is None:
            raise ValueError("data needs a directory to write the message file into")
        message_file = Path(tempfile.mkstemp(prefix="swaks-", suffix=".eml", dir=directory)[1])
        # swaks always ends the data with its own CRLF before the final ".": drop the message's
        # last line break so that exactly ``data`` arrives.
        payload = data.removesuffix(b"\n").removesuffix(b"\r")
        message_file.write_bytes(payload)
        args += ["--data", f"@{message_file}"]
    if tls != "none" and not swaks_supports_tls():
        raise PeerUnavailable("swaks lacks TLS support (install libnet-ssleay-perl)")
    if tls == "starttls":
        args.append("--tls")
    elif tls == "implicit":
        args.append("--tls-on-connect")
    if tls != "none" and ca_file is not None:
        args += ["--tls-verify", "--tls-ca-path", str(ca_file)]
    if auth is not None:
        args += ["--auth", auth, "--auth-user", user or "", "--auth-password", password or ""]
    if pipeline:
        args.append("--pipeline")
    args += list(extra_args)
    return run_tool(args, timeout=timeout + 5)


# --------------------------------------------------------------------------- msmtp


def run_msmtp(
    port: int,
    directory: Path,
    *,
    message: bytes,
    sender: str = "sender@client.test",
    recipients: Sequence[str] = ("rcpt@server.test",),
    tls: TlsMode = "starttls",
    ca_file: Path | None = None,
    auth: str | None = None,
    user: str | None = None,
    password: str | None = None,
    host: str = LOOPBACK,
    timeout: float = 30.0,
    extra_config: Sequence[str] = (),
) -> ToolResult:
    """Submit ``message`` with msmtp, configured by a private file in ``directory``.

    The configuration turns off msmtp's header additions (From, Date, Message-ID) so the message
    arrives as given, after msmtp's own CRLF conversion and dot-stuffing. ``auth`` is an msmtp
    method name (``plain``, ``login``, ``cram-md5``, ``scram-sha-1``, ``scram-sha-256``) or None
    for no AUTH. The log file (``directory/msmtp.log``) and the ``--debug`` transcript on stdout
    help when a test fails. TLS always verifies against ``ca_file`` when one is given.
    """
    config = [
        "defaults",
        "set_from_header off",
        "set_date_header off",
        "set_msgid_header off",
        f"logfile {directory / 'msmtp.log'}",
        f"timeout {int(timeout)}",
        "account default",
        f"host {host}",
        f"port {port}",
        f"from {sender}",
        "domain client.test",
    ]
    if tls == "none":
        config.append("tls off")
    else:
        config += ["tls on", f"tls_starttls {'on' if tls == 'starttls' else 'off'}"]
        if ca_file is not None:
            config += [f"tls_trust_file {ca_file}", "tls_certcheck on"]
        else:
            config.append("tls_certcheck off")
    if auth is None:
        config.append("auth off")
    else:
        config += [f"auth {auth}", f"user {user or ''}", f"password {password or ''}"]
    config += list(extra_config)
    config_file = Path(tempfile.mkstemp(prefix="msmtprc-", dir=directory)[1])
    config_file.write_text("\n".join(config) + "\n")
    # msmtp refuses a configuration file that others can read when it holds a password.
    config_file.chmod(0o600)
    args = [require_program("msmtp"), "-C", str(config_file), "--debug", "--", *recipients]
    return run_tool(args, input=message, timeout=timeout + 5)


# --------------------------------------------------------------------------- openssl s_client


@dataclass(frozen=True)
class TlsProbe:
    """What ``openssl s_client`` saw: handshake outcome, verification result and peer chain."""

    result: ToolResult
    handshake_ok: bool
    verify_code: int | None
    peer_certs_pem: tuple[bytes, ...] = field(default_factory=tuple)
    protocol: str | None = None

    @property
    def leaf_pem(self) -> bytes | None:
        """The server's own certificate (first of the chain it sent), or None."""
        return self.peer_certs_pem[0] if self.peer_certs_pem else None


def run_s_client(
    port: int,
    *,
    starttls: bool = True,
    ca_file: Path | None = None,
    servername: str | None = None,
    host: str = LOOPBACK,
    timeout: float = 20.0,
) -> TlsProbe:
    """Handshake with ``openssl s_client`` (``-starttls smtp`` for RFC 3207) and report the result.

    stdin is empty, so s_client closes right after the handshake. With ``ca_file`` the chain is
    verified (``-verify_return_error`` makes a bad chain fail the handshake); ``servername`` is
    sent as SNI and checked against the certificate (``-verify_hostname``).
    """
    args = [require_program("openssl"), "s_client", "-connect", f"{host}:{port}", "-showcerts"]
    if starttls:
        args += ["-starttls", "smtp", "-name", "client.test"]
    if ca_file is not None:
        args += ["-CAfile", str(ca_file), "-verify_return_error"]
    if servername is not None:
        args += ["-servername", servername]
        if ca_file is not None:
            args += ["-verify_hostname", servername]
    result = run_tool(args, timeout=timeout)
    certs = _pem_blocks(result.stdout)
    verify_code: int | None = None
    protocol: str | None = None
    for line in result.stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("Verify return code:"):
            verify_code = int(stripped.split(":", 1)[1].split()[0])
        elif stripped.startswith("Protocol  :") or stripped.startswith("Protocol :"):
            protocol = stripped.split(":", 1)[1].strip()
        elif stripped.startswith("New, ") and ", Cipher is " in stripped:
            protocol = protocol or stripped.split(",")[1].strip()
    cipher_none = "Cipher is (NONE)" in result.stdout
    handshake_ok = result.returncode == 0 and bool(certs) and not cipher_none
    return TlsProbe(
        result=result,
        handshake_ok=handshake_ok,
        verify_code=verify_code,
        peer_certs_pem=tuple(certs),
        protocol=protocol,
    )


def _pem_blocks(text: str) -> list[bytes]:
    """Every PEM certificate block in ``text``, normalised to end with a newline."""
    blocks: list[bytes] = []
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    pos = 0
    while (start := text.find(begin, pos)) >= 0:
        stop = text.find(end, start)
        if stop < 0:
            break
        blocks.append((text[start : stop + len(end)] + "\n").encode("ascii"))
        pos = stop + len(end)
    return blocks


def same_certificate(pem_a: bytes, pem_b: bytes) -> bool:
    """True when two PEM certificates encode the same DER bytes (whitespace-insensitive)."""
    return ssl.PEM_cert_to_DER_cert(pem_a.decode("ascii")) == ssl.PEM_cert_to_DER_cert(
        pem_b.decode("ascii")
    )
