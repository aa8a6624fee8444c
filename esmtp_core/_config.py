"""Frozen configuration objects for both sides, with safe defaults.

Every limit has a default that an internet-facing server can live with; every extension is on
unless switched off. Options are validated at construction (``ValueError`` for nonsense such as a
negative limit), in the spirit of h2's ``H2Configuration``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["BareLineEndingPolicy", "ClientConfig", "ServerConfig"]


class BareLineEndingPolicy(enum.Enum):
    """What the server does with a bare LF or bare CR inside a DATA body.

    ``REJECT`` (the default) answers the message with ``550 5.6.11`` once its real end
    (``CRLF.CRLF``) arrives, so a message that might be read differently by another MTA is never
    delivered (SMTP smuggling, 2023). ``NORMALIZE`` turns each bare LF or CR into CRLF in the body
    handed to the application. In both modes only ``CRLF . CRLF`` ends the data.
    """

    REJECT = "reject"
    NORMALIZE = "normalize"


def _check_positive(name: str, value: int | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Configuration of a :class:`~esmtp_core.ServerConnection`."""

    #: Name used in the greeting, the EHLO reply and trace headers.
    hostname: str = "localhost"
    #: Speak LMTP (RFC 2033): LHLO instead of HELO/EHLO, one reply per recipient after the data.
    lmtp: bool = False
    #: Text after the hostname in the 220 greeting.
    greeting_text: str = "ESMTP esmtp-core ready"

    # --- extensions offered in the EHLO reply ---
    #: SIZE limit in octets (RFC 1870), advertised and enforced while streaming; None: no limit.
    max_message_size: int | None = 33_554_432
    pipelining: bool = True
    eight_bit_mime: bool = True
    enhanced_status_codes: bool = True
    smtputf8: bool = True
    chunking: bool = True
    binarymime: bool = True
    dsn: bool = True
    #: REQUIRETLS (RFC 8689) is only ever offered once TLS is active.
    requiretls: bool = True
    #: The transport can do TLS: offer STARTTLS (RFC 3207) until it is active.
    starttls: bool = False
    #: The session is already under TLS from its first byte (implicit TLS, port 465).
    tls_on_connect: bool = False
    #: SASL mechanism names to offer (RFC 4954), in the order advertised.
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    #: Offer and allow AUTH only under TLS (538 5.7.11 otherwise).
    auth_require_tls: bool = True
    #: MAIL needs a successful AUTH first (530 5.7.0).
    auth_required: bool = False
    #: SCRAM iteration count (RFC 5802 §5.1 ``i``) announced when the application answers an
    #: ``AuthSecretLookup`` with a plain password, and for the made-up record shown to unknown
    #: users. Match it to the count of your stored ``ScramSecrets`` so both look alike. At least 1;
    #: RFC 5802 §5.1 and RFC 7677 §4 ask for at least 4096, and clients (this library's included)
    #: refuse counts below 4096 or above 1,000,000, so stay within that range outside tests.
    scram_iterations: int = 4096
    #: Answer VRFY through the application (default reply 252) or refuse it with 502.
    vrfy: bool = True
    #: Answer EXPN through the application or refuse it with 502 (the default, as most MTAs do).
    expn: bool = False
    #: Extra EHLO keywords (with their parameters) to advertise verbatim, e.g. ``"XCLIENT ADDR"``.
    extra_capabilities: tuple[str, ...] = ()
    #: Verbs handed to the application as :class:`~esmtp_core.UnknownCommand` events.
    extra_commands: frozenset[str] = field(default_factory=frozenset)
    #: Extension parameters passed through in ``MailParams.extra`` / ``RcptParams.extra``.
    extra_mail_parameters: frozenset[str] = field(default_factory=frozenset)
    extra_rcpt_parameters: frozenset[str] = field(default_factory=frozenset)

    # --- limits ---
    #: Longest command line in octets including CRLF (RFC 5321 §4.5.3.1.4: 512; extensions add
    #: room for their parameters, so the default is larger). Longer lines get 500 5.5.6.
    max_command_line_length: int = 2048
    #: Longest line inside a DATA body including CRLF (RFC 5321 §4.5.3.1.6: 1000). None: no limit.
    max_data_line_length: int | None = 1000
    #: Recipients per transaction (452 4.5.3 beyond). RFC 5321 §4.5.3.1.8 requires >= 100.
    max_recipients: int = 1000
    #: Erroneous commands (4xx/5xx replies decided by the core) before 421 and close.
    max_errors: int = 20
    #: Total commands per session before 421 and close; None: no limit.
    max_commands: int | None = 100_000
    #: Longest AUTH response line (RFC 4954 §4: 12288 octets) in octets.
    max_auth_line_length: int = 12_288
    #: Largest body chunk handed to the application in one event.
    max_chunk_size: int = 1_048_576
    #: Bare LF / bare CR inside DATA.
    bare_line_endings: BareLineEndingPolicy = BareLineEndingPolicy.REJECT

    def __post_init__(self) -> None:
        _check_positive("max_message_size", self.max_message_size, allow_none=True)
        _check_positive("max_data_line_length", self.max_data_line_length, allow_none=True)
        _check_positive("max_commands", self.max_commands, allow_none=True)
        for name in (
            "max_recipients",
            "max_errors",
            "max_auth_line_length",
            "max_chunk_size",
            "scram_iterations",
        ):
            _check_positive(name, getattr(self, name))
        if self.max_command_line_length < 512:
            raise ValueError("max_command_line_length must be at least 512 (RFC 5321 §4.5.3.1.4)")
        if not self.hostname or any(c in self.hostname for c in " \r\n"):
            raise ValueError(f"bad hostname {self.hostname!r}")
        if self.tls_on_connect and self.starttls:
            raise ValueError("tls_on_connect and starttls are exclusive")
        for text in (self.greeting_text, *self.extra_capabilities, *self.auth_mechanisms):
            if "\r" in text or "\n" in text:
                raise ValueError("configuration text may not contain CR or LF")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Configuration of a :class:`~esmtp_core.ClientConnection`."""

    #: Name sent in EHLO/HELO/LHLO (a domain or an address literal such as ``[127.0.0.1]``).
    local_hostname: str = "localhost"
    #: Speak LMTP (RFC 2033).
    lmtp: bool = False
    #: The session is under TLS from its first byte (implicit TLS).
    tls_on_connect: bool = False
    #: Send credentials without TLS (off: AUTH before TLS raises LocalProtocolError).
    allow_insecure_auth: bool = False
    #: Use these extensions when the server offers them.
    use_pipelining: bool = True
    use_chunking: bool = True
    use_binarymime: bool = True
    use_smtputf8: bool = True
    use_8bitmime: bool = True
    use_size: bool = True
    #: BDAT chunk size in octets when sending with CHUNKING.
    bdat_chunk_size: int = 1_048_576
    #: Longest reply line accepted, in octets including CRLF (RFC 5321 says 512; be lenient).
    max_reply_line_length: int = 4096
    #: Most lines in one multi-line reply (EHLO replies are the longest in practice).
    max_reply_lines: int = 200
    #: Send HELO by itself when EHLO is refused with 500/502/504/550 (RFC 5321 §3.2).
    helo_fallback: bool = True
    #: SASL mechanisms in order of preference for ``auth()`` without a mechanism: the first one
    #: the server offered, ``CLIENT_MECHANISMS`` implements and the credentials allow wins.
    #: None: ``DEFAULT_CLIENT_PREFERENCE`` (bearer tokens, then SCRAM-*-PLUS > SCRAM > CRAM-MD5 >
    #: PLAIN > LOGIN).
    auth_preference: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("bdat_chunk_size", "max_reply_line_length", "max_reply_lines"):
            _check_positive(name, getattr(self, name))
        if self.max_reply_line_length < 512:
            raise ValueError("max_reply_line_length must be at least 512 (RFC 5321 §4.5.3.1.5)")
        if not self.local_hostname or any(c in self.local_hostname for c in " \r\n"):
            raise ValueError(f"bad local_hostname {self.local_hostname!r}")
