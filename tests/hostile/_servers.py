"""Start and stop ``esmtp serve`` as a real subprocess, and read its Maildir.

The server under test runs in its own process so that a test can SIGKILL it, measure its
resident memory from ``/proc`` and restart it on the same port, as a crash would.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ._rawsmtp import RawPeer


class ServeProcess:
    """``python -m transports serve`` on a loopback port, storing into ``maildir``."""

    def __init__(self, port: int, maildir: Path, *extra: str, log: Path | None = None) -> None:
        self.port = port
        self.maildir = maildir
        self.extra = extra
        self.log_path = log or maildir.parent / f"serve-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, ready_within: float = 20.0) -> None:
        """Start the process and wait until it answers with a 220 greeting."""
        args = [
            sys.executable, "-m", "transports", "serve",
            "--listen", f"127.0.0.1:{self.port}",
            "--maildir", str(self.maildir),
            "--hostname", "mx.test",
            *self.extra,
        ]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.starts += 1
        self.wait_ready(ready_within)

    def wait_ready(self, within: float) -> None:
        """Poll until a connection gets the greeting (the process has no readiness pipe)."""
        deadline = time.monotonic() + within
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"esmtp serve exited with {self.proc.returncode}: {self.log()}")
            try:
                peer = RawPeer.connect("127.0.0.1", self.port, timeout=2.0)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # nothing to await: the port opens when the process is ready
                continue
            try:
                reply = peer.read_reply()
                assert reply.code == 220, reply
                peer.send(b"QUIT\r\n")
            finally:
                peer.close()
            return

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def rss_kib(self) -> int:
        """Resident set size (VmRSS) of the server process, in KiB, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, exactly like a crash or a power cut of the process."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        """The process's combined output so far (for assertion messages)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def maildir_messages(maildir: Path) -> dict[str, bytes]:
    """Every file delivered into ``new/`` (and ``cur/``), by file name."""
    found: dict[str, bytes] = {}
    for sub in ("new", "cur"):
        directory = maildir / sub
        if directory.is_dir():
            for entry in os.scandir(directory):
                found[f"{sub}/{entry.name}"] = Path(entry.path).read_bytes()
    return found


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted``; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard if hard != resource.RLIM_INFINITY else wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connect_retrying(port: int, within: float) -> socket.socket:
    """Connect to a server that may be restarting."""
    deadline = time.monotonic() + within
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
