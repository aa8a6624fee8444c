"""``python -m transports serve`` as a real subprocess for the CLI tests: start it on a free
loopback port, follow its log lines (stderr), stop it with a signal."""

from __future__ import annotations

import contextlib
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Seconds any single wait in the CLI tests may take.
WAIT = 20.0


@dataclass
class ServeProcess:
    """A running ``esmtp serve`` and the log lines it wrote so far."""

    proc: subprocess.Popen[bytes]
    port: int = 0
    lines: list[str] = field(default_factory=list)
    pending: queue.Queue[str | None] = field(default_factory=queue.Queue)
    #: Lines before this index were returned by :meth:`next_line` already.
    consumed: int = 0

    def wait_line(self, pattern: str) -> re.Match[str]:
        """The first log line (ever) matching ``pattern``; waits (bounded) for it."""
        return self._find(pattern, 0)[1]

    def next_line(self, pattern: str) -> re.Match[str]:
        """The next matching line after the one this returned last (counts repeated lines)."""
        index, match = self._find(pattern, self.consumed)
        self.consumed = index + 1
        return match

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and return the exit status."""
        self.proc.send_signal(signum)
        return self.proc.wait(WAIT)

    def _find(self, pattern: str, start: int) -> tuple[int, re.Match[str]]:
        index = start
        while True:
            while index >= len(self.lines):
                line = self.pending.get(timeout=WAIT)
                if line is None:
                    raise AssertionError(f"esmtp serve ended; stderr: {self.lines}")
                self.lines.append(line)
            if match := re.search(pattern, self.lines[index]):
                return index, match
            index += 1


@contextlib.contextmanager
def serve_process(*args: str, stdout: int = subprocess.DEVNULL) -> Iterator[ServeProcess]:
    """``esmtp serve --listen 127.0.0.1:0 ARGS``, running until the block ends (then killed if
    it is still running)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "transports", "serve", "--listen", "127.0.0.1:0", *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    running = ServeProcess(proc)

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            running.pending.put(raw.decode(errors="replace").rstrip("\n"))
        running.pending.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        running.port = int(running.wait_line(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT)
