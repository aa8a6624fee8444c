"""Error types shared by both sides of the core.

Two protocol error types, as in h11:

* :class:`LocalProtocolError` — the embedding code misused the API (replied twice, sent a command
  in the wrong state, built a command containing CR or LF, ...). It is a bug in the caller.
* :class:`RemoteProtocolError` — the peer broke the protocol badly enough that the connection must
  be dropped. When the core has already queued a reply for the peer (for example a ``421``), it is
  in :attr:`ProtocolError.reply` and in the connection's outgoing bytes.

:class:`ReplyError` is the one error type carrying an SMTP reply that adapters and clients raise
when a server refused something (modelled on go-smtp's ``SMTPError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._reply import Reply

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError", "ReplyError"]


class ProtocolError(Exception):
    """Base class of :class:`LocalProtocolError` and :class:`RemoteProtocolError`."""

    def __init__(self, message: str, *, reply: Reply | None = None) -> None:
        super().__init__(message)
        #: The reply that was (server side) or should be (hint) sent to the peer, if any.
        self.reply = reply


class LocalProtocolError(ProtocolError):
    """The embedding code used the API in a way the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol; the connection must be closed."""


class ReplyError(Exception):
    """An SMTP reply that means failure, raised by clients and adapters.

    ``reply`` is the :class:`~esmtp_core.Reply` the server sent (code, enhanced code, text).
    """

    def __init__(self, reply: Reply, message: str | None = None) -> None:
        super().__init__(message or str(reply))
        self.reply = reply

    @property
    def code(self) -> int:
        """The three-digit reply code."""
        return self.reply.code
