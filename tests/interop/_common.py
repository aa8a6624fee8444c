"""Shared plumbing for the interop peers: program lookup, skips, ports, directories, TLS test
certificates and Maildir reading. Import from :mod:`tests.interop.peers`, which re-exports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

LOOPBACK = "127.0.0.1"

# Debian installs Postfix's tools in /usr/sbin, which is not on every user's PATH.
_EXTRA_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class PeerUnavailable(RuntimeError):
    """A third-party program (or the privilege it needs) is not available on this machine."""


class PeerError(RuntimeError):
    """A third-party program failed to start, timed out, or reported an error."""


# --------------------------------------------------------------------------- programs and skips


def in_ci() -> bool:
    """True when running in CI, where interop tests must fail rather than skip (issue 8)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_program(name: str) -> str | None:
    """Absolute path of ``name`` on PATH or in the sbin directories, or None."""
    found = shutil.which(name)
    if found is None:
        found = shutil.which(name, path=os.pathsep.join(_EXTRA_PATH))
    return found


def require_program(name: str) -> str:
    """Absolute path of ``name``; raise :class:`PeerUnavailable` with an install hint otherwise."""
    found = find_program(name)
    if found is None:
        raise PeerUnavailable(
            f"{name} is not installed (scripts/test installs it when run as root with apt)"
        )
    return found


def require_root(why: str) -> None:
    """Raise :class:`PeerUnavailable` unless running as root (Postfix's master needs it)."""
    if os.geteuid() != 0:
        raise PeerUnavailable(f"{why} needs root")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the current test with ``reason``; in CI, fail it instead (issue 8: never skip in CI)."""
    import pytest  # noqa: PLC0415 - keep pytest out of the benchmarks' import path

    if in_ci():
        pytest.fail(f"interop peer unavailable in CI: {reason}")
    pytest.skip(reason)


def need_program(name: str) -> str:
    """Path of ``name`` for a test; skip (or fail in CI) when it is missing."""
    try:
        return require_program(name)
    except PeerUnavailable as exc:
        skip_or_fail(str(exc))


# --------------------------------------------------------------------------- ports and directories


def free_port(host: str = LOOPBACK) -> int:
    """An ephemeral TCP port on ``host`` that was free a moment ago.

    The kernel picks it (bind to port 0); the small race before the caller binds it is accepted,
    as every test framework does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    host: str = LOOPBACK,
    *,
    timeout: float = 10.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until ``host:port`` accepts TCP connections, at most ``timeout`` seconds.

    There is no event to await from another process, so this polls with a short back-off; if
    ``process`` exits meanwhile, its output is reported at once instead of waiting out the timeout.
    """
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if process is not None and process.poll() is not None:
            out = _drain(process)
            raise PeerError(f"process exited with {process.returncode} before listening: {out}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise PeerError(f"nothing listening on {host}:{port} after {timeout}s") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _drain(process: subprocess.Popen[bytes]) -> str:
    """Whatever a finished process wrote (stdout then stderr), decoded for an error message."""
    try:
        out, err = process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        return "<no output>"
    return ((out or b"") + (err or b"")).decode("utf-8", "replace").strip()


def make_workdir(prefix: str = "esmtp-interop-") -> Path:
    """A fresh temporary directory readable by other users (Postfix daemons run as ``postfix``).

    ``tempfile.mkdtemp`` makes it 0700 and pytest's ``tmp_path`` lives under a 0700 directory; both
    would lock Postfix's unprivileged daemons out, so this one is 0755 directly under the temp dir.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def workdir(prefix: str = "esmtp-interop-") -> Iterator[Path]:
    """:func:`make_workdir` as a context manager that removes the directory afterwards."""
    path = make_workdir(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 5.0) -> None:
    """Stop ``process`` gracefully (SIGTERM), then forcibly (SIGKILL) after ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class TestPKI:
    """A throwaway CA and one server certificate, written as PEM files (RFC 3207 tests).

    ``cert_file`` holds the leaf followed by its chain; ``key_file`` the private key;
    ``ca_file`` the CA certificate that clients must trust; ``combined_file`` key then chain (the
    format Postfix's ``smtpd_tls_chain_files`` and some tools want).
    """

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    ca_file: Path
    cert_file: Path
    key_file: Path
    combined_file: Path
    hostnames: tuple[str, ...]
    cert_pem: bytes
    cert_der: bytes

    @property
    def sha256_fingerprint(self) -> str:
        """Leaf certificate SHA-256 fingerprint as ``AA:BB:...`` (Postfix and msmtp syntax)."""
        digest = hashlib.sha256(self.cert_der).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    def server_context(self) -> ssl.SSLContext:
        """A server-side ``SSLContext`` loaded with the leaf certificate and key."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side ``SSLContext`` that trusts only the test CA and checks host names."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_pki(
    directory: Path, hostnames: Sequence[str] = ("localhost", LOOPBACK, "mx.test")
) -> TestPKI:
    """Create a CA and a server certificate for ``hostnames`` (DNS names or IP addresses).

    Uses trustme, so the certificates are valid for a day and never touch the system trust store.
    Files are world-readable: they are test keys, and Postfix's daemons read them as ``postfix``.
    """
    import trustme  # noqa: PLC0415 - optional dependency of the test extra only

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(*hostnames)
    ca_file = directory / "ca.pem"
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    combined_file = directory / "key-and-chain.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    cert_file.write_bytes(chain)
    key_file.write_bytes(leaf.private_key_pem.bytes())
    combined_file.write_bytes(leaf.private_key_pem.bytes() + chain)
    for path in (ca_file, cert_file, key_file, combined_file):
        path.chmod(0o644)
    cert_pem = leaf.cert_chain_pems[0].bytes()
    cert_der = ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii"))
    return TestPKI(
        directory=directory,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        combined_file=combined_file,
        hostnames=tuple(hostnames),
        cert_pem=cert_pem,
        cert_der=cert_der,
    )


# --------------------------------------------------------------------------- Maildir


def maildir_messages(maildir: Path) -> list[bytes]:
    """Every message file in ``maildir``'s ``new/`` and ``cur/``, oldest first (by file name).

    Maildir file names start with the delivery time in seconds, so name order is arrival order
    to the second; ties are broken by the rest of the name, which is good enough for tests.
    """
    files: list[Path] = []
    for sub in ("new", "cur"):
        folder = maildir / sub
        if folder.is_dir():
            files.extend(p for p in folder.iterdir() if p.is_file())
    files.sort(key=lambda p: p.name)
    return [p.read_bytes() for p in files]


def wait_for_maildir(maildir: Path, count: int, *, timeout: float = 10.0) -> list[bytes]:
    """Wait until ``maildir`` holds at least ``count`` messages, and return them all.

    Polls: delivery happens in another process (Postfix, or our server) and Maildir's rename into
    ``new/`` is the only signal there is.
    """
    deadline = time.monotonic() + timeout
    while True:
        messages = maildir_messages(maildir)
        if len(messages) >= count:
            return messages
        if time.monotonic() >= deadline:
            raise PeerError(f"{maildir}: {len(messages)} of {count} messages after {timeout}s")
        time.sleep(0.05)


def strip_trace_headers(stored: bytes, *, received: int = 1, return_path: bool = True) -> bytes:
    """Remove the ``Return-Path`` and the first ``received`` ``Received`` fields a server prepended.

    RFC 5321 §4.4: the receiving server prepends trace fields and leaves the rest of the message
    untouched; what remains must equal the submitted message byte for byte. Folded continuation
    lines (starting with SP or HTAB) belong to the field above them. Raises ``ValueError`` when the
    expected trace fields are not at the top, so a test cannot pass on a malformed store.
    """
    rest = stored
    expected = ["return-path"] * return_path + ["received"] * received
    for name in expected:
        end = _end_of_field(rest)
        field_name = rest[:end].split(b":", 1)[0].strip().lower()
        if field_name != name.encode():
            raise ValueError(f"expected a {name!r} trace field first, found {rest[:80]!r}")
        rest = rest[end:]
    return rest


def _end_of_field(data: bytes) -> int:
    """Offset just past the header field that starts ``data`` (including continuation lines)."""
    pos = 0
    while True:
        eol = data.find(b"\n", pos)
        if eol < 0:
            return len(data)
        pos = eol + 1
        if pos >= len(data) or data[pos : pos + 1] not in (b" ", b"\t"):
            return pos


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one run of a command-line peer."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def check(self) -> ToolResult:
        """Return self when the program exited 0, else raise :class:`PeerError` with its output."""
        if self.returncode != 0:
            raise PeerError(
                f"{' '.join(self.args)} exited {self.returncode}\n"
                f"stdout: {self.stdout[-4000:]}\nstderr: {self.stderr[-4000:]}"
            )
        return self


def run_tool(
    args: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> ToolResult:
    """Run a peer program to completion with a time limit, capturing its output.

    A timeout kills the program and raises :class:`PeerError` (never hangs the suite).
    """
    start = time.monotonic()
    try:
        done = subprocess.run(
            list(args),
            input=input if input is not None else b"",
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{' '.join(args)} timed out after {timeout}s: {exc.stderr!r}") from None
    return ToolResult(
        args=tuple(args),
        returncode=done.returncode,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=done.stderr.decode("utf-8", "replace"),
        elapsed=time.monotonic() - start,
    )
