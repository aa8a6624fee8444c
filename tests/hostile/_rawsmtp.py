"""A deliberately dumb SMTP peer over a raw socket, for attacking servers and clients.

It sends exactly the bytes it is given (bare LFs, pipelined commands, plaintext behind STARTTLS)
and parses replies strictly per RFC 5321 §4.2, so a test sees precisely what the other side did.
It is test equipment, not a client library: no retries, no dot-stuffing unless asked.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RawReply:
    """A parsed reply: its code and text lines (without the code and separator)."""

    code: int
    lines: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.code} {' / '.join(self.lines)}"


class PeerClosed(ConnectionError):
    """The other side closed the connection before a complete reply or line arrived."""


class RawPeer:
    """One end of an SMTP conversation over a socket (plain or TLS)."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket, timeout: float = 10.0) -> None:
        self.sock: socket.socket | ssl.SSLSocket = sock
        self.sock.settimeout(timeout)
        self.buffer = bytearray()

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 10.0) -> RawPeer:
        """Open a TCP connection."""
        return cls(socket.create_connection((host, port), timeout=timeout), timeout)

    def send(self, data: bytes) -> None:
        """Send exactly ``data``."""
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise PeerClosed("peer closed the connection")
        self.buffer += chunk

    def read_line(self) -> bytes:
        """One CRLF-terminated line, CRLF included."""
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 2])
                del self.buffer[: end + 2]
                return line
            self._fill()

    def read_reply(self) -> RawReply:
        """One complete (possibly multi-line) reply; raises ValueError if malformed."""
        lines: list[str] = []
        while True:
            line = self.read_line()
            if len(line) < 5 or not line[:3].isdigit() or line[3:4] not in (b" ", b"-", b"\r"):
                raise ValueError(f"malformed reply line {line!r}")
            lines.append(line[4:-2].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return RawReply(int(line[:3]), tuple(lines))

    def command(self, line: bytes) -> RawReply:
        """Send one command line (CRLF added) and read its reply."""
        self.send(line + b"\r\n")
        return self.read_reply()

    def read_until_closed(self, limit: float = 10.0) -> bytes:
        """Everything the peer sends until it closes (or ``limit`` seconds pass)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                self._fill()
            except (PeerClosed, ConnectionResetError):
                break
            except TimeoutError:
                break
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """Wrap the socket as a TLS client; whatever plaintext was already buffered is kept in
        ``leftover`` for the test to inspect (a correct server sends none)."""
        self.leftover = bytes(self.buffer)
        self.buffer.clear()
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self) -> None:
        """Close the socket, ignoring errors of an already dead connection."""
        with contextlib.suppress(OSError):
            self.sock.close()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
