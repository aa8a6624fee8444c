"""The server's receive buffer: bytes the client sent that the core has not consumed yet.

Like h11's, it remembers how far it already searched for the end of a line, so feeding a long
line one byte at a time costs linear, not quadratic, time; and the caller caps the size of an
incomplete line (the buffer reports it) so a client cannot make it grow without bound while the
core is reading commands.
"""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]

# discard() copies a rest up to this long out of an immutable read instead of converting the read
# into a bytearray. Bounded, so that taking many lines off one large read stays linear overall.
_SLICE_LIMIT = 4096


class ReceiveBuffer:
    """A FIFO of bytes with line extraction (RFC 5321 §2.3.8: lines end with CRLF; the LF is
    what we search for, the caller decides what to do with a missing CR)."""

    __slots__ = ("_searched", "data")

    def __init__(self) -> None:
        #: The buffered bytes. Read it for cheap ``len()``/emptiness tests on the per-command
        #: path (a method call costs more than the test); change it only through the methods.
        #: Either the one bytes object last received (kept as is: in the DATA hot path a whole
        #: read is usually consumed at once, so it is never copied), or a bytearray once bytes
        #: have to be appended or removed piecemeal (appending is amortised O(1) and deleting a
        #: prefix is O(1) in CPython: it moves the start pointer).
        self.data: bytes | bytearray = b""
        self._searched = 0  # no LF in self.data[:self._searched]

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def _mutable(self) -> bytearray:
        if not isinstance(self.data, bytearray):
            self.data = bytearray(self.data)
        return self.data

    def append(self, data: bytes) -> None:
        """Add bytes received from the peer."""
        if not self.data:
            self.data = bytes(data)  # no copy for bytes (the usual case)
        else:
            self._mutable().extend(data)

    def extract_line(self) -> bytes | None:
        """Remove and return the first line including its LF, or None when no LF arrived yet."""
        data = self.data
        index = data.find(b"\n", self._searched)
        if index < 0:
            self._searched = len(data)
            return None
        self._searched = 0
        if index + 1 == len(data):
            # The whole buffer is the line (a read of one command, the usual case): no slice.
            self.data = b""
            return data if isinstance(data, bytes) else bytes(data)
        line = bytes(data[: index + 1])
        self.discard(index + 1)
        self._searched = 0
        return line

    def peek(self, limit: int) -> bytes:
        """Up to ``limit`` bytes from the front, without removing them."""
        data = self.data
        if limit >= len(data) and isinstance(data, bytes):
            return data
        return bytes(data[:limit])

    def discard(self, count: int) -> None:
        """Remove ``count`` bytes from the front."""
        data = self.data
        if count >= len(data):
            self.data = b""
        elif count:
            if isinstance(data, bytes) and len(data) - count <= _SLICE_LIMIT:
                # A short rest (a BDAT chunk or the next commands behind a command line):
                # one copy as bytes, which peek() then hands out as is, rather than a copy
                # into a bytearray now and another out of it later.
                self.data = data[count:]
            else:
                del self._mutable()[:count]
        self._searched = max(0, self._searched - count)

    def clear(self) -> None:
        """Drop everything (STARTTLS injection defence, over-long line)."""
        self.data = b""
        self._searched = 0
