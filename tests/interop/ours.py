"""Our own server as a peer: ``esmtp serve`` started as a separate process, as users run it.

The interop tests drive the real command line (DESIGN.md's CLI contract), not the Python API, so
what swaks, msmtp, Postfix and openssl talk to is exactly what a user would start. Its log goes
to a file (never a pipe that a chatty load test could fill and block the server on).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._common import (
    LOOPBACK,
    PeerError,
    TestPKI,
    free_port,
    maildir_messages,
    wait_for_maildir,
    wait_for_port,
)

#: Every ``--transport`` choice of ``esmtp serve`` (DESIGN.md).
TRANSPORTS = ("asyncio", "anyio", "trio", "threads", "sockets")


@dataclass
class OurServer:
    """A running ``esmtp serve``: where it listens, stores and logs."""

    port: int
    maildir: Path
    log_file: Path
    process: subprocess.Popen[bytes]
    transport: str
    hostname: str
    host: str = LOOPBACK

    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log_file.read_text("utf-8", "replace") if self.log_file.exists() else ""

    def messages(self) -> list[bytes]:
        """Messages stored so far, in arrival order."""
        return maildir_messages(self.maildir)

    def wait_for_messages(self, count: int, *, timeout: float = 15.0) -> list[bytes]:
        """Wait until ``count`` messages are stored; the server log is added to a timeout error."""
        try:
            return wait_for_maildir(self.maildir, count, timeout=timeout)
        except PeerError as exc:
            raise PeerError(f"{exc}\nesmtp serve log:\n{self.log()[-4000:]}") from None

    def wait_for_marked(
        self, marker: bytes, *, count: int = 1, timeout: float = 15.0
    ) -> list[bytes]:
        """Wait until ``count`` stored messages contain ``marker`` (e.g. a unique Message-ID),
        and return them: servers shared between tests tell their messages apart this way."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if marker in m]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise PeerError(
                    f"{len(found)} of {count} messages with {marker!r} after {timeout}s\n"
                    f"esmtp serve log:\n{self.log()[-4000:]}"
                )
            time.sleep(0.05)


@contextlib.contextmanager
def esmtp_serve(
    directory: Path,
    *,
    transport: str = "asyncio",
    pki: TestPKI | None = None,
    implicit_tls: bool = False,
    users: Mapping[str, str] | None = None,
    require_auth: bool = False,
    allow_insecure_auth: bool = False,
    hostname: str = "esmtp.test",
    extra_args: Sequence[str] = (),
    check_exit: bool = True,
    port: int | None = None,
) -> Iterator[OurServer]:
    """Run ``python -m transports serve`` on a free loopback port, storing into a Maildir.

    ``pki`` passes ``--tls-cert``/``--tls-key`` (STARTTLS, or implicit TLS with
    ``implicit_tls``); ``users`` is written to an ``--auth-file``. On exit the server gets
    SIGTERM and must stop cleanly with status 0 (DESIGN.md) unless ``check_exit`` is False.
    ``port`` defaults to a free one.
    """
    name = f"serve-{transport}-{free_port()}"
    work = directory / name
    work.mkdir(parents=True)
    port = port or free_port()
    maildir = work / "Maildir"
    log_file = work / "serve.log"
    args = [
        sys.executable,
        "-m",
        "transports",
        "serve",
        "--listen",
        f"{LOOPBACK}:{port}",
        "--maildir",
        str(maildir),
        "--transport",
        transport,
        "--hostname",
        hostname,
        "--timeout",
        "30",
    ]
    if pki is not None:
        args += ["--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file)]
        if implicit_tls:
            args.append("--implicit-tls")
    if users is not None:
        auth_file = work / "users"
        auth_file.write_text("".join(f"{u}:{p}\n" for u, p in users.items()), "utf-8")
        auth_file.chmod(0o600)
        args += ["--auth-file", str(auth_file)]
    if require_auth:
        args.append("--require-auth")
    if allow_insecure_auth:
        args.append("--allow-insecure-auth")
    args += list(extra_args)
    with log_file.open("wb") as log:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    server = OurServer(
        port=port,
        maildir=maildir,
        log_file=log_file,
        process=process,
        transport=transport,
        hostname=hostname,
    )
    try:
        try:
            wait_for_port(port, timeout=20, process=process)
        except PeerError as exc:
            raise PeerError(f"{exc}\n{server.log()}") from None
        yield server
    finally:
        code = _stop(process)
    if check_exit and code != 0:
        raise PeerError(f"esmtp serve exited {code} after SIGTERM\n{server.log()[-4000:]}")


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM (DESIGN.md: clean stop), SIGKILL if it does not stop in time; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
            return -signal.SIGKILL
    return process.returncode
