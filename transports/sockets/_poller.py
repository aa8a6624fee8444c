"""Readiness polling for the selector loop: ``select.epoll`` used directly where there is one
(Linux), the :mod:`selectors` module elsewhere.

Why not always :mod:`selectors`: its ``select()`` builds a ``(SelectorKey, events)`` pair per
ready socket through a method call and translates the event bits in Python, about 0.4 µs per
event, and the loop has one event per SMTP round trip (issue 6). Here ``poll()`` returns what
the system call returned, ``(fd, events)`` pairs, and :attr:`Poller.owners` maps a descriptor to
what was registered with it.

Event bits are the poller's own: register with :data:`READ` / :data:`WRITE`, test what
``poll()`` returns with :data:`READABLE` / :data:`WRITABLE` (which include error and hang-up: the
next ``recv()`` or ``send()`` then tells what happened, as with :mod:`selectors`).
"""

from __future__ import annotations

import select
import selectors
import socket
from typing import Any

__all__ = ["READ", "READABLE", "WRITABLE", "WRITE", "Poller"]

if hasattr(select, "epoll"):
    READ: int = select.EPOLLIN
    WRITE: int = select.EPOLLOUT
    READABLE: int = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
    WRITABLE: int = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP

    class Poller:
        """``select.epoll``, level-triggered, with the owner of each descriptor."""

        def __init__(self) -> None:
            self._epoll = select.epoll()
            #: Descriptor -> what was registered with it.
            self.owners: dict[int, Any] = {}

        def register(self, sock: socket.socket, events: int, owner: Any) -> None:
            fd = sock.fileno()
            self._epoll.register(fd, events)
            self.owners[fd] = owner

        def modify(self, sock: socket.socket, events: int) -> None:
            self._epoll.modify(sock.fileno(), events)

        def unregister(self, sock: socket.socket) -> None:
            fd = sock.fileno()
            del self.owners[fd]
            self._epoll.unregister(fd)

        def poll(self, timeout: float | None) -> list[tuple[int, int]]:
            """Ready ``(fd, events)`` pairs; ``timeout`` None waits for ever."""
            return self._epoll.poll(-1 if timeout is None else timeout, len(self.owners) or 1)

        def close(self) -> None:
            self._epoll.close()

else:  # pragma: no cover - exercised where there is no epoll (macOS, Windows)
    READ = READABLE = selectors.EVENT_READ
    WRITE = WRITABLE = selectors.EVENT_WRITE

    class Poller:  # type: ignore[no-redef]
        """:class:`selectors.DefaultSelector`, with the same interface as the epoll one."""

        def __init__(self) -> None:
            self._selector = selectors.DefaultSelector()
            self.owners: dict[int, Any] = {}

        def register(self, sock: socket.socket, events: int, owner: Any) -> None:
            self._selector.register(sock, events)
            self.owners[sock.fileno()] = owner

        def modify(self, sock: socket.socket, events: int) -> None:
            self._selector.modify(sock, events)

        def unregister(self, sock: socket.socket) -> None:
            del self.owners[sock.fileno()]
            self._selector.unregister(sock)

        def poll(self, timeout: float | None) -> list[tuple[int, int]]:
            return [(key.fd, events) for key, events in self._selector.select(timeout)]

        def close(self) -> None:
            self._selector.close()
