"""examples/client_socket.py against a real SMTP server on loopback (aiosmtpd), as a library call
and as the command a reader would run."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "client_socket.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("client_socket_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Stored"


@pytest.fixture
def server() -> Iterator[tuple[int, Recorder]]:
    aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
    recorder = Recorder()
    port = free_port()
    controller = aiosmtpd_controller.Controller(
        recorder, hostname="127.0.0.1", port=port, decode_data=False
    )
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()


MESSAGE = b"From: a@example.org\r\nSubject: test\r\n\r\n.leading dot\r\nbare LF line\nend"


def test_send_as_a_library(server: tuple[int, Recorder]) -> None:
    port, recorder = server
    example = load_example()
    result = example.send(
        "127.0.0.1", port, "a@example.org", ["b@example.org", "nobody@example.org"], MESSAGE
    )
    assert result.accepted == ("b@example.org",)
    assert result.outcomes()["nobody@example.org"].code == 550
    assert recorder.messages == [
        (
            "a@example.org",
            ["b@example.org"],
            b"From: a@example.org\r\nSubject: test\r\n\r\n.leading dot\r\nbare LF line\r\nend\r\n",
        )
    ]


def test_command_line(server: tuple[int, Recorder]) -> None:
    port, recorder = server
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "127.0.0.1", str(port), "a@example.org", "c@example.org"],
        input=b"Subject: cli\r\n\r\nhello\r\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("c@example.org: 250")
    assert recorder.messages[0][2] == b"Subject: cli\r\n\r\nhello\r\n"
