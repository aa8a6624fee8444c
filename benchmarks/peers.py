"""Peers and measured processes: Postfix's smtp-sink and smtp-source, and our server script.

Everything runs on 127.0.0.1, is started here and stopped here. CPU time is measured precisely:

* a Python server started by :class:`PythonServer` (``python -m benchmarks.serve``) reports its
  own ``getrusage(RUSAGE_SELF)`` (all threads, µs resolution) whenever asked on its stdin;
* a C peer (smtp-sink, smtp-source) is reaped with ``os.wait4``, whose rusage covers the whole
  process; smtp-sink is therefore started afresh for each measured run when its CPU matters.

``/proc/<pid>/stat`` would do without any cooperation but counts in 10 ms clock ticks, too coarse
for smtp-sink, which spends a few milliseconds on a thousand messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SMTP_SINK",
    "SMTP_SOURCE",
    "CpuTimes",
    "PythonServer",
    "SmtpSink",
    "free_port",
    "postfix_missing",
    "read_status_kib",
    "reset_peak_rss",
    "run_reaped",
    "run_smtp_source",
    "wait_for_port",
]

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
ROOT = Path(__file__).resolve().parent.parent


def postfix_missing() -> str | None:
    """Why the Postfix test programs cannot run here, or None when they can."""
    for path in (SMTP_SINK, SMTP_SOURCE):
        if not os.access(path, os.X_OK):
            return f"{path} not installed (Debian package postfix)"
    return None


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """User plus system CPU seconds (``user`` alone beside), and the wall seconds of the same
    interval."""

    cpu: float
    wall: float
    user: float = 0.0


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago (for programs that cannot bind
    port 0 and report it, such as smtp-sink)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Poll until something accepts on ``port`` (a C peer gives no readiness signal)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(delay)  # nothing to await: the peer offers no readiness event
            delay = min(delay * 2, 0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def run_reaped(argv: list[str], timeout: float) -> tuple[int, CpuTimes, bytes]:
    """Run ``argv`` to completion; return its exit code, its own CPU (from ``wait4``) and wall
    time, and its stderr. Killed after ``timeout`` seconds (then the exit code is negative)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stderr is not None
        errors = proc.stderr.read()  # EOF when the program exits
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
    proc.stderr.close()
    return proc.returncode, CpuTimes(usage.ru_utime + usage.ru_stime, wall, usage.ru_utime), errors


class SmtpSink:
    """``smtp-sink`` on an ephemeral loopback port: discards every message (the C ceiling).

    ``stop()`` terminates it and returns its CPU time since start (precise, from ``wait4``).
    """

    _startup_cpu: float | None = None

    def __init__(self, *, backlog: int = 256) -> None:
        # The port is free when chosen but another program may take it before smtp-sink binds
        # it (the machine is shared): then smtp-sink exits at once and another port is tried.
        for attempt in range(3):
            self.port = free_port()
            argv = [SMTP_SINK]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
            argv += [f"127.0.0.1:{self.port}", str(backlog)]
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for_port(self.port, self.proc)
                return
            except RuntimeError:  # exited before listening
                self.proc.wait()
                if attempt == 2:
                    raise
            except BaseException:
                self.proc.kill()
                self.proc.wait()
                raise

    def stop(self) -> CpuTimes:
        """Stop the sink; return the CPU it used (including its negligible start-up)."""
        self.proc.send_signal(signal.SIGTERM)
        _, _status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = -signal.SIGTERM
        return CpuTimes(usage.ru_utime + usage.ru_stime, time.perf_counter() - self.started,
                        usage.ru_utime)

    @classmethod
    def startup_cpu(cls) -> float:
        """CPU seconds a sink spends starting, answering the readiness probe and stopping, with no
        mail (median of three; measured once and cached). Subtracted from each run's CPU so that
        a short run is not charged for it (about 3 ms here: 1.5 µs over 2,000 messages, but
        35 µs over the 100 of a quick run)."""
        if cls._startup_cpu is None:
            samples = []
            for _ in range(3):
                samples.append(cls().stop().cpu)
            cls._startup_cpu = sorted(samples)[1]
        return cls._startup_cpu

    def __enter__(self) -> SmtpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.stop()


def run_smtp_source(
    port: int, *, messages: int, size: int, sessions: int, timeout: float = 120.0
) -> CpuTimes:
    """``smtp-source`` sending ``messages`` messages with ``size`` octets of payload over
    ``sessions`` parallel sessions, each session kept open for its share (``-d``).

    Returns smtp-source's own CPU and the wall time of the whole run.
    """
    argv = [SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size),
            "-M", "client.example", "-f", "sender@client.example", "-t", "rcpt@bench.example",
            f"127.0.0.1:{port}"]
    code, times, errors = run_reaped(argv, timeout)
    if code != 0:
        raise RuntimeError(f"smtp-source exited with {code}: {errors.decode(errors='replace')}")
    return times


def read_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid: int) -> None:
    """Reset ``VmHWM`` to the current RSS (Linux: write 5 to ``/proc/<pid>/clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5\n")


class PythonServer:
    """A discarding SMTP server in a child process: ``python -m benchmarks.serve KIND``.

    The child binds an ephemeral port and prints ``READY <port>``; each line sent to its stdin
    makes it print its own CPU time as JSON; closing its stdin stops it.
    """

    def __init__(self, kind: str, *extra: str) -> None:
        self.kind = kind
        # stderr to a file, not a pipe: a server logging per message must never block on it.
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve", kind, *extra],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
            text=True, bufsize=1,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            self.proc.wait()
            tail = self.stderr_tail()
            self.close()
            raise RuntimeError(f"server {kind!r} did not start: {line!r} {tail}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        """The server's user plus system CPU seconds so far (all its threads)."""
        user, system = self.cpu_split()
        return user + system

    def cpu_split(self) -> tuple[float, float]:
        """The server's (user, system) CPU seconds so far (all its threads)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("usage\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server {self.kind!r} died: {self.stderr_tail()}")
        usage = json.loads(line)
        return float(usage["utime"]), float(usage["stime"])

    def stderr_tail(self) -> str:
        """The last lines the server wrote to its stderr (for error messages)."""
        self.errors.seek(0)
        return self.errors.read()[-2000:].decode(errors="replace")

    def close(self) -> None:
        """Stop the server (EOF on its stdin, then SIGTERM, then SIGKILL) and reap it."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()

    def __enter__(self) -> PythonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
