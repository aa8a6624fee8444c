"""examples/server_socket.py against Python's smtplib on loopback, as a library call and as the
command a reader would run."""

from __future__ import annotations

import importlib.util
import signal
import smtplib
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "server_socket.py"
MESSAGE = (
    b"From: a@example.org\r\nTo: b@example.com\r\nSubject: hi\r\n\r\n"
    b".leading dot\r\n..two dots\r\nline\r\n"
)


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("server_socket_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server() -> Any:
    example = load_example()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    store = example.MemoryStore()
    config = example.ServerConfig(hostname="mx.example.com")
    thread = threading.Thread(
        target=example.serve, args=(listener, store, config), kwargs={"sessions": 2}, daemon=True
    )
    thread.start()
    yield listener.getsockname()[1], store
    thread.join(timeout=30)
    listener.close()
    assert not thread.is_alive()


def test_smtplib_sends_through_the_example(server: Any) -> None:
    port, store = server
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        code, _ = client.ehlo("client.example")
        assert code == 250
        assert client.has_extn("pipelining")
        assert client.has_extn("chunking")
        refused = client.sendmail(
            "a@example.org", ["b@example.com", "c@elsewhere.net", "D@Example.com"], MESSAGE
        )
        assert refused == {"c@elsewhere.net": (550, b"5.1.1 Recipient rejected")}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("a@example.org", ["x@elsewhere.net"], MESSAGE)
        assert client.noop()[0] == 250
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("", ["postmaster@example.com"], b"Subject: bounce\r\n\r\nbody\r\n")
    assert [(m.sender, m.recipients) for m in store.messages] == [
        ("a@example.org", ("b@example.com", "D@Example.com")),
        ("", ("postmaster@example.com",)),
    ]
    # Exactly what smtplib meant to send, after its dot-stuffing was undone.
    assert store.messages[0].content == MESSAGE


def test_example_as_a_command() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "127.0.0.1", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        assert b"listening" in process.stderr.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("a@example.org", ["b@example.com"], MESSAGE)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert b"--- from <a@example.org> to b@example.com" in out
    assert MESSAGE in out  # printed exactly as smtplib meant it (its dot-stuffing undone)
