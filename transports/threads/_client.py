"""The thread adapter's client: the blocking :class:`Client` and :func:`send_messages`.

A blocking client needs no threads of its own, so :class:`Client` *is*
:class:`transports.sockets.Client` (one implementation, not two copies). What threads add is
concurrency: :func:`send_messages` sends many messages over a few parallel sessions, each worker
thread owning one client (clients are not thread-safe; sessions are never shared).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._client_driver import Message, SendResult
from ..errors import SMTPClientError, SMTPReplyError
from ..sockets._client import Client

__all__ = ["Client", "Outgoing", "send_messages"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for :func:`send_messages` with an explicit envelope (needed for bytes)."""

    message: Message
    sender: str | None = None
    recipients: Sequence[str] | None = None


def send_messages(
    messages: Iterable[Message | Outgoing],
    host: str,
    port: int = 25,
    *,
    connections: int = 4,
    login: tuple[str, str] | None = None,
    on_connect: Callable[[Client], None] | None = None,
    **client_options: Any,
) -> list[SendResult | SMTPClientError]:
    """Send ``messages`` over up to ``connections`` parallel sessions.

    Returns one result per message, in order: its :class:`~transports.SendResult`, or the
    :class:`~transports.errors.SMTPClientError` it failed with (nothing is raised for a single
    message).

    ``client_options`` go to :class:`Client` (``tls=``, ``ssl_context=``, ``timeout=``, ...);
    ``login`` is ``(username, password)`` for every session; ``on_connect`` runs after each
    connection (and login) for anything else. A session that fails for another reason than a
    refusal is closed and the worker opens a new one for its next message. Each message is sent
    once: a message whose session broke mid-way is reported, never retried (it may have been
    delivered).
    """
    if connections < 1:
        raise ValueError("connections must be at least 1")
    items = list(messages)
    results: list[SendResult | SMTPClientError | None] = [None] * len(items)
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        work.put(index)

    def worker() -> None:
        client: Client | None = None
        try:
            while True:
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return
                item = items[index]
                outgoing = item if isinstance(item, Outgoing) else Outgoing(item)
                try:
                    if client is None or not client.connected:
                        client = _open(host, port, login, on_connect, client_options)
                    results[index] = client.send_message(
                        outgoing.message, outgoing.sender, outgoing.recipients
                    )
                except SMTPClientError as exc:
                    results[index] = exc
                    if not isinstance(exc, SMTPReplyError) and client is not None:
                        client.close()
                except ValueError as exc:  # no envelope in the message: report, go on
                    results[index] = SMTPClientError(str(exc))
        finally:
            if client is not None:
                client.quit()

    threads = [
        threading.Thread(target=worker, name=f"esmtp-send-{number}", daemon=True)
        for number in range(min(connections, len(items)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result if result is not None else SMTPClientError("not sent") for result in results]


def _open(
    host: str,
    port: int,
    login: tuple[str, str] | None,
    on_connect: Callable[[Client], None] | None,
    client_options: dict[str, Any],
) -> Client:
    """A connected (and logged in) client; closed again when any step fails."""
    client = Client(host, port, **client_options)
    client.connect()
    try:
        if login is not None:
            client.login(*login)
        if on_connect is not None:
            on_connect(client)
    except BaseException:
        client.close()
        raise
    return client
