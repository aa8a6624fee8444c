"""Start, drive and stop real third-party SMTP programs on loopback, for tests and benchmarks.

Everything here runs on 127.0.0.1 with ephemeral ports, inside a temporary directory, and is
bounded in time: no system service, no global configuration, no unbounded waits. Each peer is a
context manager that stops what it started, even when the body raises.

Peers and what they are used for (RFC 5321 client and server roles):

- :func:`postfix_instance`: a throwaway Postfix (client relaying to us, or server we deliver to).
- :func:`smtp_sink` / :func:`run_smtp_source`: Postfix's test server and load generator.
- :func:`run_swaks`, :func:`run_msmtp`: real SMTP clients (submission, RFC 6409 style).
- :func:`run_s_client`: ``openssl s_client -starttls smtp`` (RFC 3207 handshake check).
- :func:`esmtp_serve`: our own ``esmtp serve`` as a subprocess, on any ``--transport``.
- :func:`make_pki`, :func:`free_port`, :func:`wait_for_port`, Maildir readers: plumbing.

Helpers never import pytest at module level, so benchmarks can use them without it; tests turn a
missing program into a skip (or, in CI, a failure) with :func:`need_program` / :func:`skip_or_fail`.
Usage from the repository root: ``from tests.interop.peers import smtp_sink, run_smtp_source``.
"""

from __future__ import annotations

from ._common import (
    LOOPBACK,
    PeerError,
    PeerUnavailable,
    TestPKI,
    ToolResult,
    find_program,
    free_port,
    in_ci,
    maildir_messages,
    make_pki,
    make_workdir,
    need_program,
    require_program,
    require_root,
    run_tool,
    skip_or_fail,
    stop_process,
    strip_trace_headers,
    wait_for_maildir,
    wait_for_port,
    workdir,
)
from ._tools import (
    SinkMessage,
    SmtpSink,
    TlsMode,
    TlsProbe,
    run_msmtp,
    run_s_client,
    run_smtp_source,
    run_swaks,
    same_certificate,
    smtp_sink,
)
from .ours import TRANSPORTS, OurServer, esmtp_serve
from .postfix import PostfixInstance, PostfixMode, RelayTls, postfix_instance

__all__ = [
    "LOOPBACK",
    "TRANSPORTS",
    "OurServer",
    "PeerError",
    "PeerUnavailable",
    "PostfixInstance",
    "PostfixMode",
    "RelayTls",
    "SinkMessage",
    "SmtpSink",
    "TestPKI",
    "TlsMode",
    "TlsProbe",
    "ToolResult",
    "esmtp_serve",
    "find_program",
    "free_port",
    "in_ci",
    "maildir_messages",
    "make_pki",
    "make_workdir",
    "need_program",
    "postfix_instance",
    "require_program",
    "require_root",
    "run_msmtp",
    "run_s_client",
    "run_smtp_source",
    "run_swaks",
    "run_tool",
    "same_certificate",
    "skip_or_fail",
    "smtp_sink",
    "stop_process",
    "strip_trace_headers",
    "wait_for_maildir",
    "wait_for_port",
    "workdir",
]
