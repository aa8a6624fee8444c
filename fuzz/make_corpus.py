"""Write the seed corpus of the fuzzers (``fuzz/corpus/server`` and ``fuzz/corpus/client``).

The seeds are small hand-written sessions in the fuzz-case format of ``fuzz/harness.py``: a
4-byte header (configuration flags, accept/reject mask, repeat and split mode) then the peer's
bytes. They are committed; rerun this script only after changing them::

    python -m fuzz.make_corpus
"""

from __future__ import annotations

import base64
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Configuration flag bits (see harness.server_config_from_flags).
LMTP, STARTTLS, INSECURE_AUTH, NORMALIZE, AUTH_REQUIRED, XCLIENT, EXPN, TINY = (
    1 << bit for bit in range(8)
)


def header(flags: int = 0, mask: int = 0, repeat: int = 0, split: int = 0) -> bytes:
    """The 4-byte fuzz-case header."""
    return bytes([flags, mask & 0xFF, mask >> 8, (split << 4) | repeat])


def b64(text: str) -> bytes:
    """Base64 of a SASL response, as an AUTH line carries it."""
    return base64.b64encode(text.encode())


ENVELOPE = b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"
BODY = b"Subject: hi\r\n\r\nhello\r\n..leading dot\r\n"

SERVER_SEEDS: dict[str, bytes] = {
    "data": header()
    + b"EHLO client.example\r\n" + ENVELOPE + b"DATA\r\n" + BODY + b".\r\nQUIT\r\n",
    "helo": header() + b"HELO client.example\r\n" + ENVELOPE + b"DATA\r\n" + BODY + b".\r\n",
    "pipelined_split": header(split=3)
    + b"EHLO c\r\n" + ENVELOPE + b"RCPT TO:<carol@example.net>\r\nDATA\r\n"
    + BODY + b".\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
    "rejections": header(mask=0xAAAA)
    + b"EHLO c\r\n" + ENVELOPE + b"RCPT TO:<d@e>\r\nDATA\r\n" + BODY + b".\r\nRSET\r\nQUIT\r\n",
    "bdat": header()
    + b"EHLO c\r\nMAIL FROM:<a@b> BODY=BINARYMIME SIZE=8\r\nRCPT TO:<c@d>\r\n"
    + b"BDAT 5\r\nhel\x00oBDAT 3 LAST\r\n\r\n.QUIT\r\n",
    "bdat_zero_last": header(split=1)
    + b"EHLO c\r\n" + ENVELOPE + b"BDAT 4\r\nabcdBDAT 0 LAST\r\nNOOP\r\n",
    "bdat_rejected": header(mask=0x0004)
    + b"EHLO c\r\n" + ENVELOPE + b"BDAT 6 LAST\r\nDATA\r\nMAIL FROM:<x@y>\r\n",
    "auth_plain": header(INSECURE_AUTH)
    + b"EHLO c\r\nAUTH PLAIN " + b64("\0user\0pass") + b"\r\n" + ENVELOPE + b"QUIT\r\n",
    "auth_plain_continuation": header(INSECURE_AUTH | AUTH_REQUIRED, mask=0x0002)
    + b"EHLO c\r\nAUTH PLAIN\r\n" + b64("authz\0user\0pass") + b"\r\nMAIL FROM:<a@b>\r\n",
    "auth_login": header(INSECURE_AUTH)
    + b"EHLO c\r\nAUTH LOGIN\r\n" + b64("user") + b"\r\n" + b64("pass") + b"\r\n"
    + b"AUTH LOGIN " + b64("again") + b"\r\n*\r\nAUTH PLAIN !!!\r\n",
    "auth_before_tls": header(STARTTLS)
    + b"EHLO c\r\nAUTH PLAIN " + b64("\0u\0p") + b"\r\nQUIT\r\n",
    "starttls": header(STARTTLS, split=2)
    + b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected@evil>\r\n",
    "starttls_then_session": header(STARTTLS, split=4)
    + b"EHLO c\r\nSTARTTLS\r\nEHLO c\r\nAUTH PLAIN " + b64("\0u\0p") + b"\r\n"
    + ENVELOPE + b"DATA\r\nx\r\n.\r\nSTARTTLS\r\n",
    "lmtp": header(LMTP, mask=0x0010)
    + b"LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nRCPT TO:<g@h>\r\n"
    + b"DATA\r\nx\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 1 LAST\r\nyQUIT\r\n",
    "parameters": header()
    + b"EHLO c\r\nMAIL FROM:<\"q u\"@[127.0.0.1]> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS"
    + b" ENVID=a+2Bb AUTH=<> REQUIRETLS\r\n"
    + b"RCPT TO:<@relay.example:\xc3\xa9@example.com> NOTIFY=SUCCESS,DELAY"
    + b" ORCPT=rfc822;b+40c\r\nRCPT TO:<x@y> NOTIFY=NEVER,SUCCESS FOO=bar\r\n",
    "errors": header(TINY)
    + b"DATA\r\nRCPT TO:<a@b>\r\nMAIL FROM:<a@b>\r\nFOO bar\r\n" + b"X" * 600 + b"\r\n"
    + b"VRFY postmaster\r\nEXPN list\r\nHELP\r\nNOOP\r\nRSET\r\nEHLO\r\nHELO\r\n",
    "verbs_lowercase": header(EXPN | XCLIENT)
    + b"ehlo c\r\nvrfy bob\r\nexpn staff\r\nxclient ADDR=1.2.3.4\r\nhelp data\r\nquit\r\n",
    "smuggle_lf": header()
    + b"EHLO c\r\n" + ENVELOPE + b"DATA\r\nx\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\n"
    + b"DATA\r\nforged\r\n.\r\n",
    "smuggle_cr": header(NORMALIZE)
    + b"EHLO c\r\n" + ENVELOPE + b"DATA\r\nx\r.\r\nMAIL FROM:<evil@x>\r\n.\r\n",
    "smuggle_mixed": header(split=5)
    + b"EHLO c\r\n" + ENVELOPE + b"DATA\r\na\r\n.\nb\n.\r\nc\r.\nd\r\n.\re\n.\r\r\n.\r\n",
    "long_data_lines": header(TINY)
    + b"EHLO c\r\n" + ENVELOPE + b"DATA\r\n" + b"y" * 300 + b"\r\n" + b"z" * 400 + b"\r\n.\r\n",
    "size_exceeded": header(TINY, repeat=1)
    + b"EHLO c\r\n" + ENVELOPE + b"DATA\r\n" + b"0123456789" * 10 + b"\r\n.\r\n",
    "noop_flood": header(TINY, repeat=2) + b"NOOP\r\n" * 8,
    "binary_garbage": header(split=1) + bytes(range(256)),
}


EHLO_FULL = (
    b"250-mx.example greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 100000\r\n"
    b"250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-AUTH PLAIN LOGIN\r\n"
    b"250-STARTTLS\r\n250-REQUIRETLS\r\n250-XCLIENT ADDR NAME\r\n250 ENHANCEDSTATUSCODES\r\n"
)
OK = b"250 2.0.0 Ok\r\n"
GREETING = b"220 mx.example ESMTP ready\r\n"

# Client seeds: the server's side of a session. The header's mask (bytes 1-2) seeds the scripted
# application's choice of commands, so the same replies meet different commands.
CLIENT_SEEDS: dict[str, bytes] = {
    "full_session": header(mask=1) + GREETING + EHLO_FULL + OK * 6
    + b"354 3.0.0 go on\r\n" + OK * 4 + b"221 2.0.0 Bye\r\n",
    "minimal_server": header(mask=2) + b"220 mx\r\n250 mx\r\n" + b"250 ok\r\n" * 4
    + b"354 go\r\n250 ok\r\n221 bye\r\n",
    "ehlo_refused_helo": header(mask=3) + GREETING + b"502 5.5.1 no EHLO\r\n250 mx\r\n"
    + OK * 3 + b"354 go\r\n" + OK,
    "pipelined_rejections": header(mask=4, split=3) + GREETING + EHLO_FULL + OK
    + b"550 5.1.1 no such user\r\n452 4.5.3 too many\r\n354 go\r\n250 ok\r\n"
    + b"250 ok\r\n554 5.5.1 no valid recipients\r\n",
    "starttls_injection": header(mask=5) + GREETING + EHLO_FULL
    + b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 PIPELINING\r\n"
    + EHLO_FULL + OK * 3,
    "auth_login": header(0x10, mask=6) + GREETING + EHLO_FULL
    + b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authenticated\r\n" + OK * 3,
    "auth_bad_challenge": header(0x10, mask=7) + GREETING + EHLO_FULL
    + b"334 !!notbase64\r\n501 5.5.2 cancelled\r\n334 \r\n535 5.7.8 no\r\n",
    "lmtp": header(0x01, mask=8) + b"220 lmtp ready\r\n" + EHLO_FULL + OK * 3
    + b"354 go\r\n250 2.1.5 b delivered\r\n452 4.2.2 c over quota\r\n",
    "bdat_binary": header(0x08 | 0x40, mask=9) + GREETING + EHLO_FULL + OK * 12,
    "no_pipelining": header(0x02, mask=10, split=1) + GREETING
    + b"250-mx\r\n250-SIZE 10\r\n250 8BITMIME\r\n" + OK * 2 + b"354 go\r\n" + OK,
    "unsolicited_421": header(mask=11) + GREETING + b"421 4.4.2 idle timeout\r\n",
    "unsolicited_250": header(mask=12) + GREETING + EHLO_FULL + OK * 20,
    "malformed_mixed_codes": header(mask=13) + GREETING + b"250-mx\r\n251 mixed\r\n",
    "malformed_bare_lf": header(mask=14) + b"220 mx\n250 ok\n",
    "malformed_code": header(mask=15) + b"2x0 what\r\n",
    "overlong_line": header(mask=16, repeat=1) + b"220 " + b"x" * 1000 + b"\r\n",
    "many_lines": header(mask=17, repeat=2) + GREETING + b"250-line\r\n" * 30 + b"250 end\r\n",
    "closed_mid_reply": header(mask=18) + GREETING + b"250-mx\r\n250-PIPE",
    "garbage": header(mask=19, split=1) + bytes(range(256)),
    # Found by the stateful test: MAIL refused, RCPT and DATA accepted (a confused server).
    "refused_mail_then_354": header(mask=20) + GREETING + EHLO_FULL
    + b"503 5.5.1 Sender already specified\r\n250 2.1.5 ok\r\n354 go\r\n250 2.0.0 ok\r\n",
}


def write(directory: Path, seeds: dict[str, bytes]) -> None:
    """Write each seed under its name (libFuzzer ignores names; humans read them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / name).write_bytes(data)


def main() -> None:
    """Regenerate both corpus directories."""
    write(HERE / "corpus" / "server", SERVER_SEEDS)
    write(HERE / "corpus" / "client", CLIENT_SEEDS)


if __name__ == "__main__":
    main()
