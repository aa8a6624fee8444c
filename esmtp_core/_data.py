"""The streaming DATA decoder: the server core's hot path (RFC 5321 §4.1.1.4, §4.5.2).

It turns the raw bytes after ``354`` into message bytes: it finds the end of data, removes the
dot-stuffing, and enforces the bare-CR/LF policy, the line-length limit and the size limit, while
holding at most four bytes across calls. Everything is done with whole-buffer C primitives
(``bytes.find``, ``bytes.replace``, ``bytes.rfind``, comparisons); there is no per-line Python
loop, because a per-line loop costs more than everything else put together. The only Python
loops visit dots (a bounded number per read, see :func:`_unstuff`) and hop through the line
length check one window of ``max_line_length`` octets at a time.

The rules, and why:

* Only ``CRLF . CRLF`` ends the data. ``LF . LF``, ``CR . CR LF`` and friends are ordinary content
  here; a server that accepted them as the end while the next hop did not (or the reverse) would
  let a sender smuggle a second message (SMTP smuggling, 2023).
* A bare CR or bare LF anywhere is therefore suspicious. ``REJECT`` (the default) keeps reading to
  the real end and refuses the message; ``NORMALIZE`` turns each one into CRLF. Dot-unstuffing
  applies only at the start of a real CRLF line in both modes.
* The first line of the body starts right after the CRLF of the ``DATA`` command: the decoder
  pretends a CRLF precedes the body, so ``.\\r\\n`` as the very first line ends an empty message
  and ``..x`` at the start is unstuffed.
"""

from __future__ import annotations

import enum
import re

from ._config import BareLineEndingPolicy

__all__ = ["DataDecoder", "DataProblem"]

_DOT_LINE = b"\r\n."
_END = b"\r\n.\r\n"
# Dot lines walked one by one per read before split/join takes over (see _unstuff).
_LOOP_DOTS = 32
# Dots inside lines (full stops) hopped over per read before the "CRLF ." search takes over.
_STRAY_DOTS = 16
# RFC 5321 §4.5.2: a bare CR is a CR not followed by LF; a bare LF an LF not preceded by CR.
_BARE_RE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# A module constant: an enum member looked up through its class costs ~60 ns in CPython 3.11.
_NORMALIZE = BareLineEndingPolicy.NORMALIZE


class DataProblem(enum.Enum):
    """Why a message is refused at its end (the first problem found wins)."""

    BARE_LINE_ENDING = "bare CR or LF"
    LINE_TOO_LONG = "line too long"
    TOO_BIG = "message too big"


def _held_suffix(work: bytes) -> int:
    """Length of the longest suffix of ``work`` that is a proper prefix of CRLF.CRLF.

    Those bytes cannot be decided yet: they may be the end of data, a stuffed dot, or the CR of a
    CRLF split across two reads. Everything before them can be decided now.
    """
    last = work[-1:]
    if last == b"\r":
        return 4 if work.endswith(b"\r\n.\r") else 1
    if last == b"\n":
        return 2 if work.endswith(b"\r\n") else 0
    if last == b".":
        return 3 if work.endswith(b"\r\n.") else 0
    return 0


def _unstuff(work: bytes, cut: int) -> tuple[bytes, int]:
    """Remove the stuffed dots from ``work[:cut]`` up to the end of data; return the result and
    the index of CRLF.CRLF in ``work`` (-1 when it is not there).

    Every "CRLF ." whose dot lies before the cut is decidable (see :func:`_held_suffix`): the
    first one followed by CRLF is the end, every other one is a stuffed dot (RFC 5321 §4.5.2).

    The dots are found by hopping from one ``.`` to the next with ``find`` of a single byte
    (memchr, an order of magnitude faster than searching for the three-byte "CRLF ."), looking
    back two octets at each. Most body octets by volume are base64 attachments and other text
    where a dot is rare except at the start of a line, so this usually touches only the dot
    lines. In prose, where full stops are common, more than ``_STRAY_DOTS`` dots inside lines
    hand over to :func:`_unstuff_search` (the hopping wasted at most that many steps); more than
    ``_LOOP_DOTS`` dot lines hand over to ``split``/``join``.
    """
    find = work.find
    pieces: list[bytes] = []
    start = 0
    strays = 0
    dot = find(b".", 2, cut)
    while dot >= 0:
        if work[dot - 1] == 10 and work[dot - 2] == 13:  # preceded by CRLF: a dot line
            if work.startswith(b"\r\n", dot + 1):  # CRLF . CRLF: the end of data
                pieces.append(work[start:dot])
                return b"".join(pieces), dot - 2
            pieces.append(work[start:dot])  # keep the CRLF, drop the stuffed dot
            start = dot + 1
            if len(pieces) > _LOOP_DOTS:
                return _unstuff_split(work, cut)
            # The octet after it is content even if it is a dot (a stuffed "..": the usual case).
            dot = find(b".", dot + 2, cut)
            continue
        strays += 1
        if strays > _STRAY_DOTS:
            return _unstuff_search(work, cut)
        dot = find(b".", dot + 1, cut)
    if not pieces:
        return (work if cut == len(work) else work[:cut]), -1
    pieces.append(work[start:cut])
    return b"".join(pieces), -1


def _unstuff_split(work: bytes, cut: int) -> tuple[bytes, int]:
    """:func:`_unstuff` for dot-heavy text: ``split``/``join`` removes every dot line's dot in C."""
    end = work.find(_END)
    stop = end + 2 if end >= 0 else cut
    return b"\r\n".join(work[:stop].split(_DOT_LINE)), end


def _unstuff_search(work: bytes, cut: int) -> tuple[bytes, int]:
    """:func:`_unstuff` for text with many dots inside lines: search for "CRLF ." itself.

    The dot lines are walked backwards with ``rfind`` (faster than a forward search in CPython
    for this needle); each end marker met on the way discards what lay after it, so the first
    one wins. Occurrences of "CRLF ." cannot overlap.
    """
    dots: list[int] = []
    end = -1
    pos = work.rfind(_DOT_LINE, 0, cut)
    while pos >= 0:
        if work.startswith(b"\r\n", pos + 3):
            end = pos
            dots.clear()
        else:
            dots.append(pos)
            if len(dots) > _LOOP_DOTS:
                return _unstuff_split(work, cut)
        pos = work.rfind(_DOT_LINE, 0, pos)
    stop = end + 2 if end >= 0 else cut
    pieces: list[bytes] = []
    start = 0
    for dot in reversed(dots):
        pieces.append(work[start : dot + 2])
        start = dot + 3
    pieces.append(work[start:stop])
    return b"".join(pieces), end


class DataDecoder:
    """Decode one DATA body. Call :meth:`feed` with raw bytes until :attr:`done`.

    ``max_line_length`` counts octets including the CRLF (RFC 5321 §4.5.3.1.6), measured on the
    unstuffed body. ``max_size`` counts the unstuffed body octets (RFC 1870).
    """

    __slots__ = (
        "_held",
        "_line",
        "_max_line",
        "_max_size",
        "_normalize",
        "_skip",
        "done",
        "problem",
        "size",
    )

    def __init__(
        self,
        *,
        policy: BareLineEndingPolicy = BareLineEndingPolicy.REJECT,
        max_line_length: int | None = 1000,
        max_size: int | None = None,
    ) -> None:
        # The virtual CRLF in front of the body (see the module docstring); _skip drops it from
        # the output.
        self._held = b"\r\n"
        self._skip = 2
        self._line = 0  # octets of the current, unfinished output line
        self._normalize = policy is _NORMALIZE
        self._max_line = max_line_length
        self._max_size = max_size
        #: Octets of message delivered so far (unstuffed; stops counting after a problem).
        self.size = 0
        #: The first reason to refuse the message, or None.
        self.problem: DataProblem | None = None
        #: True once CRLF.CRLF was seen; the decoder must not be fed again.
        self.done = False

    def may_end(self, data: bytes) -> bool:
        """Whether feeding ``data`` next might find the end of data (used to batch tiny reads)."""
        return _END in self._held + data[:4] or _END in data

    def feed(self, data: bytes) -> tuple[bytes, int]:
        """Decode ``data``; return the message bytes it completes and how many octets of
        ``data`` were consumed (all of them, unless the end of data was found: the rest belongs
        to the commands that follow). Once a problem is found the returned bytes are empty, but
        the end is still looked for."""
        held = self._held
        if self._skip and held == b"\r\n" and data and data[0] != 0x2E:  # not "."
            # Nothing decided yet and the body does not start with a dot (a stuffed dot or the
            # end): the virtual CRLF can then be neither part of "CRLF ." nor of a held suffix,
            # so drop it now rather than copy the body behind it and slice it off again. (Held
            # bytes beyond those two, after a first read of ".", are kept: they may be the end.)
            held = self._held = b""
            self._skip = 0
        work = held + data if held else data
        hold = _held_suffix(work)
        cut = len(work) - hold
        out, end = _unstuff(work, cut)
        stop = end + 2 if end >= 0 else cut
        if end >= 0:
            consumed = end + 5 - len(held)
            self.done = True
            self._held = b""
        else:
            consumed = len(data)
            self._held = work[cut:]
        if self._skip and stop >= 2:
            # Drop the virtual CRLF (a stuffed dot right after it was removed with the rest).
            out = out[2:]
            self._skip = 0
        elif self._skip:
            out = b""
        if not out or self.problem is not None:
            return b"", consumed
        return self._check(out), consumed

    def _check(self, out: bytes) -> bytes:
        # Bare CR/LF: the body is clean exactly when deleting every CR and then writing every LF
        # as CRLF gives it back. Three memchr/memcpy-speed passes instead of a per-line loop. The
        # previous output never ends with a CR that might pair with an LF here (it would have
        # been held back), so the check is exact across calls.
        if out != out.replace(b"\r", b"").replace(b"\n", b"\r\n"):
            if not self._normalize:
                self.problem = DataProblem.BARE_LINE_ENDING
                return b""
            out = _BARE_RE.sub(b"\r\n", out)
        limit = self._max_line
        if limit is not None and not self._lines_fit(out, limit):
            self.problem = DataProblem.LINE_TOO_LONG
            return b""
        self.size += len(out)
        if self._max_size is not None and self.size > self._max_size:
            self.problem = DataProblem.TOO_BIG
            return b""
        return out

    def _lines_fit(self, out: bytes, limit: int) -> bool:
        """Whether every line (LF-terminated, LF included) in ``out`` is at most ``limit`` long.

        Instead of visiting each line, hop through windows of ``limit`` octets: the line that
        starts at ``pos`` fits exactly when an LF occurs in ``out[pos:pos+limit]``, and every line
        between ``pos`` and the last LF in that window fits too. So one ``rfind`` (memrchr) per
        ``limit`` octets suffices.
        """
        first = out.find(b"\n")
        if first < 0:
            self._line += len(out)
            return self._line < limit
        if self._line + first + 1 > limit:
            return False
        pos = first + 1
        rfind = out.rfind
        last = rfind(b"\n")
        while last + 1 - pos > limit:
            pos = rfind(b"\n", pos, pos + limit) + 1
            if not pos:  # no LF in the window: the line starting there is too long
                return False
        self._line = len(out) - last - 1
        return self._line < limit
