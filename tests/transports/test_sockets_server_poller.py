"""The selector loop's poller: ``epoll`` directly on Linux, :mod:`selectors` elsewhere. Both
variants must behave the same; the fallback is loaded here with ``select.epoll`` hidden, so it is
tested on Linux too."""

from __future__ import annotations

import importlib.util
import select
import selectors
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from _transport_harness import WAIT, Recorder, run_server

import transports.sockets._poller as native
import transports.sockets._server as server_module


def _fallback(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delattr(select, "epoll", raising=False)
    path = Path(native.__file__)
    spec = importlib.util.spec_from_file_location("_poller_without_epoll", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["native", "selectors"])
def poller_module(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    if request.param == "native":
        return native
    module = _fallback(monkeypatch)
    assert module.READ == selectors.EVENT_READ
    return module


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    yield ours, peer
    ours.close()
    peer.close()


def test_readable_writable_and_owner(
    poller_module: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    poller = poller_module.Poller()
    try:
        owner = object()
        poller.register(ours, poller_module.READ, owner)
        assert poller.owners[ours.fileno()] is owner
        assert poller.poll(0) == []
        peer.sendall(b"MAIL FROM:<a@example.org>\r\n")
        ((fd, events),) = poller.poll(1.0)
        assert fd == ours.fileno()
        assert events & poller_module.READABLE
        assert not events & poller_module.WRITABLE
        poller.modify(ours, poller_module.READ | poller_module.WRITE)
        ((fd, events),) = poller.poll(1.0)
        assert events & poller_module.READABLE
        assert events & poller_module.WRITABLE
        poller.unregister(ours)
        assert poller.owners == {}
        assert poller.poll(0) == []
    finally:
        poller.close()


def test_hang_up_is_readable(
    poller_module: ModuleType, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, peer = pair
    poller = poller_module.Poller()
    try:
        poller.register(ours, poller_module.READ, None)
        peer.close()
        ((_, events),) = poller.poll(1.0)
        assert events & poller_module.READABLE  # the next recv() reads the end of the stream
        assert ours.recv(10) == b""
    finally:
        poller.close()


@pytest.mark.parametrize("adapter", ["sockets", "threads"])
def test_server_on_the_fallback_poller(adapter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _fallback(monkeypatch)
    for name in ("Poller", "READ", "WRITE", "READABLE", "WRITABLE"):
        monkeypatch.setattr(server_module, name, getattr(module, name))
    recorder = Recorder()
    with run_server(adapter, recorder) as running, smtplib.SMTP(
        running.host, running.port, timeout=WAIT
    ) as client:
        client.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nbody\r\n")
    assert [m.content for m in recorder.messages] == [b"Subject: x\r\n\r\nbody\r\n"]
