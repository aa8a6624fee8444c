"""Postfix's ``smtp-source`` drives ``esmtp serve`` with 20 parallel sessions: zero errors.

smtp-source stops a session and reports on stderr (non-zero exit) at the first reply that is not
the expected positive one, so a clean exit plus every message in the Maildir is the proof.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .messages import lf, message, unique_tag
from .ours import OurServer
from .peers import run_smtp_source, strip_trace_headers

pytestmark = [pytest.mark.interop, pytest.mark.needs("smtp-source")]

SESSIONS = 20
MESSAGES = 100


def test_twenty_parallel_sessions(serve_starttls: OurServer, work: Path) -> None:
    tag = unique_tag("source")
    sent = message(tag)
    message_file = work / "source.eml"
    message_file.write_bytes(lf(sent))
    result = run_smtp_source(
        serve_starttls.port,
        sessions=SESSIONS,
        messages=MESSAGES,
        recipients=2,
        message_file=message_file,
        timeout=90,
    )
    result.check()
    assert not result.stderr.strip(), result.stderr
    stored = serve_starttls.wait_for_marked(f"<{tag}@client.test>".encode(), count=MESSAGES)
    assert len(stored) == MESSAGES
    # smtp-source adds one empty line of its own before the final dot.
    assert all(strip_trace_headers(m) == sent + b"\r\n" for m in stored)
