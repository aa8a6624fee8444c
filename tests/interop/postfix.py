"""A throwaway Postfix instance in a temporary directory, for interop tests and benchmarks.

Debian's postfix package, installed with "No configuration", has no running system instance and
no ``/etc/postfix/main.cf``. :func:`postfix_instance` writes its own ``config_directory``
(``main.cf`` and ``master.cf``), ``queue_directory`` and ``data_directory`` under a 0755 temporary
directory, starts it with ``postfix -c DIR start`` and stops it with ``postfix -c DIR stop``.
Everything else (binaries, ``daemon_directory``, ``shlib_directory``, ``meta_directory`` with
``postfix-files``) stays at the package defaults, which ``postfix -c DIR check`` accepts.

What an alternate instance needs on Debian (found by trying; see the module's tests):

- ``data_directory`` owned by ``mail_owner`` (master creates ``master.lock`` there);
  ``queue_directory`` and its parents owned by root and searchable by ``postfix``
  (pytest's 0700 ``tmp_path`` is not), which ``postfix check`` then fills with the queue
  subdirectories and the setgid-``postdrop`` ``maildrop``/``public`` directories.
- Root: master binds the port and switches to ``mail_owner``; ``postqueue -c`` and
  ``sendmail -C`` by root need no ``alternate_config_directories`` entry in a default main.cf.
- No syslog in containers: ``maillog_file`` (Postfix >= 3.4) with the ``postlog`` service in
  ``master.cf`` and the temp directory allowed in ``maillog_file_prefixes``.
- No chroot (column 5 ``n``): a chroot would need copies of /etc files in the queue directory.
- No DNS: ``smtpd_peername_lookup = no``, ``smtp_dns_support_level = disabled`` and a bracketed
  IP relayhost, so nothing waits for a resolver.

Three delivery modes, chosen per instance:

- ``"hold"``: every message received by smtpd is put on the hold queue (an access table
  ``static:HOLD`` in ``smtpd_recipient_restrictions``), so tests read the envelope and the DSN
  records from the queue itself (``postqueue -j``, ``postcat``).
- ``"maildir"``: everything is delivered by Postfix's ``virtual`` agent into one Maildir.
- ``"relay"``: everything is relayed to ``relayhost`` (our server), with TLS as configured;
  mail to ``user@PORT.port.test`` goes to ``127.0.0.1:PORT`` instead for each PORT listed in
  ``route_ports`` (a transport table), so one instance relays to several servers. (Postfix
  forbids ``$1`` substitution in transport tables, hence ports listed up front.)
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._common import (
    LOOPBACK,
    PeerError,
    TestPKI,
    ToolResult,
    free_port,
    make_workdir,
    require_program,
    require_root,
    run_tool,
    wait_for_maildir,
    wait_for_port,
)

#: Mode "relay": mail to "user@PORT.port.test" goes to [127.0.0.1]:PORT (ports in route_ports).
_PORT_DOMAIN = "port.test"

PostfixMode = Literal["hold", "maildir", "relay"]
RelayTls = Literal["none", "may", "encrypt", "verify", "fingerprint"]

# master.cf: one line per service; "n" in the chroot column (5th) everywhere.
_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class PostfixInstance:
    """A running throwaway Postfix; see :func:`postfix_instance`.

    ``port`` is smtpd's loopback port; ``maildir`` is where mode ``"maildir"`` delivers;
    ``log_file`` is the instance's own mail log (read it in assertion messages).
    """

    root: Path
    config_dir: Path
    queue_dir: Path
    data_dir: Path
    port: int
    mode: PostfixMode
    maildir: Path
    log_file: Path
    hostname: str
    host: str = LOOPBACK

    # ---- commands

    @staticmethod
    def routed(local_part: str, port: int) -> str:
        """An address that a ``"relay"`` instance delivers to ``127.0.0.1:port`` (the port must
        be one of its ``route_ports``)."""
        return f"{local_part}@{port}.{_PORT_DOMAIN}"

    def postconf(self, *names: str) -> dict[str, str]:
        """Effective values of the named parameters (``postconf -c DIR -h`` semantics)."""
        result = self._run("postconf", "-c", str(self.config_dir), *names).check()
        values: dict[str, str] = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition(" = ")
            values[key.strip()] = value.strip()
        return values

    def sendmail(
        self,
        message: bytes,
        recipients: Sequence[str],
        *,
        sender: str = "sender@client.test",
        extra_args: Sequence[str] = (),
    ) -> ToolResult:
        """Inject ``message`` with Postfix's ``sendmail -C DIR -f sender -i -- recipients``.

        ``-i`` keeps a line with a lone "." in the body from ending the message (sendmail(1)).
        """
        args = [
            require_program("sendmail"),
            "-C",
            str(self.config_dir),
            "-f",
            sender,
            "-i",
            *extra_args,
            "--",
            *recipients,
        ]
        return run_tool(args, input=message, timeout=30).check()

    def flush(self) -> None:
        """Attempt delivery of everything in the queue now (``postqueue -c DIR -f``)."""
        self._run("postqueue", "-c", str(self.config_dir), "-f").check()

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -c DIR -j`` reports it: one dict per message.

        Keys (postqueue(1)): ``queue_name`` (``hold``, ``active``, ``deferred``, ``incoming``,
        ``maildrop``), ``queue_id``, ``arrival_time``, ``message_size``, ``sender``,
        ``recipients`` (each with ``address`` and, when deferred, ``delay_reason``).
        """
        result = self._run("postqueue", "-c", str(self.config_dir), "-j").check()
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def queue_listing(self) -> str:
        """``postqueue -c DIR -p`` (the mailq listing), for messages in failing assertions."""
        return self._run("postqueue", "-c", str(self.config_dir), "-p").stdout

    def wait_for_queue(
        self,
        count: int,
        *,
        queue_name: str | None = "hold",
        sender: str | None = None,
        timeout: float = 15.0,
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages sit in ``queue_name`` (any queue when None),
        counting only those from envelope ``sender`` when given (tests sharing an instance use a
        unique sender each), and return those entries.

        Polls: cleanup and qmgr move files between queue directories asynchronously.
        """
        deadline = time.monotonic() + timeout
        while True:
            entries = [
                entry
                for entry in self.queue()
                if (queue_name is None or entry.get("queue_name") == queue_name)
                and (sender is None or entry.get("sender") == sender)
            ]
            if len(entries) >= count:
                return entries
            if time.monotonic() >= deadline:
                raise PeerError(
                    f"Postfix queue {queue_name!r}, sender {sender!r}: {len(entries)} of {count}"
                    f" after {timeout}s\n{self.queue_listing()}\n{self.log()[-4000:]}"
                )
            time.sleep(0.05)

    def wait_for_empty_queue(self, *, timeout: float = 15.0) -> None:
        """Wait until the queue is empty (every message delivered or bounced)."""
        deadline = time.monotonic() + timeout
        while self.queue():
            if time.monotonic() >= deadline:
                raise PeerError(
                    f"Postfix queue not empty after {timeout}s\n{self.queue_listing()}\n"
                    f"{self.log()[-4000:]}"
                )
            time.sleep(0.05)

    def postcat(self, queue_id: str, *flags: str) -> str:
        """``postcat -c DIR [flags] -q ID``: the queue file as text (``-e`` envelope, ``-h``
        header, ``-b`` body; no flags prints every record, including the DSN ones)."""
        result = self._run("postcat", "-c", str(self.config_dir), *flags, "-q", queue_id)
        return result.check().stdout

    def message_content(self, queue_id: str) -> bytes:
        """Header and body of a queued message as Postfix stored it (LF line endings).

        Postfix keeps lines without their CRLF; ``postcat -bh`` prints them with LF, so compare
        against the submitted message with CRLF replaced by LF, after Postfix's own ``Received``
        field (see :func:`~tests.interop.peers.strip_trace_headers` with ``return_path=False``).
        A line longer than ``line_length_limit`` (2048) would come back split; keep lines short.
        """
        args = [require_program("postcat"), "-c", str(self.config_dir), "-bh", "-q", queue_id]
        try:
            done = subprocess.run(args, capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise PeerError(f"postcat -q {queue_id} timed out") from None
        if done.returncode != 0:
            raise PeerError(f"postcat -q {queue_id}: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def wait_for_maildir(self, count: int, *, timeout: float = 15.0) -> list[bytes]:
        """Messages delivered into :attr:`maildir` (mode ``"maildir"``), at least ``count``."""
        try:
            return wait_for_maildir(self.maildir, count, timeout=timeout)
        except PeerError as exc:
            raise PeerError(f"{exc}\n{self.queue_listing()}\n{self.log()[-4000:]}") from None

    def session_commands(self, queue_id: str, *, timeout: float = 10.0) -> dict[str, int]:
        """The SMTP command counts of the smtpd session that received ``queue_id``.

        Postfix (>= 3.0) ends each session with a log line such as ``disconnect from
        unknown[127.0.0.1] ehlo=2 starttls=1 mail=1 rcpt=2 bdat=2 quit=1 commands=9``; it is
        found through the smtpd process that logged ``<queue_id>: client=``. This is how tests see
        whether a client used BDAT (RFC 3030) or DATA, and STARTTLS. Polls until it is logged.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = _session_commands(self.log(), queue_id)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise PeerError(f"no smtpd disconnect line for {queue_id}\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        """The instance's mail log so far (empty string when nothing was logged yet)."""
        try:
            return self.log_file.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self, *, timeout: float = 10.0) -> None:
        """``postfix -c DIR stop``, then wait (bounded) until the master process is gone."""
        pid = self._master_pid()
        self._run("postfix", "-c", str(self.config_dir), "stop")
        if pid is None:
            return
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() >= deadline:
                # "postfix abort" would also work; a stuck master gets the signal directly.
                os.kill(pid, 9)
                break
            time.sleep(0.05)

    def _master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _run(self, program: str, *args: str) -> ToolResult:
        return run_tool([require_program(program), *args], timeout=30)


_SMTPD_LINE = re.compile(r"postfix/smtpd\[(\d+)\]: (.*)$")


def _session_commands(log: str, queue_id: str) -> dict[str, int] | None:
    """Parse the disconnect line of the smtpd session that logged ``<queue_id>: client=``."""
    pid: str | None = None
    for line in log.splitlines():
        match = _SMTPD_LINE.search(line)
        if match is None:
            continue
        if pid is None:
            if match.group(2).startswith(f"{queue_id}: client="):
                pid = match.group(1)
        elif match.group(1) == pid and match.group(2).startswith("disconnect from "):
            counts: dict[str, int] = {}
            for item in match.group(2).split()[3:]:
                name, _, number = item.partition("=")
                # "rcpt=2/3" means 2 of 3 succeeded: keep the successes.
                if number.split("/")[0].isdigit():
                    counts[name] = int(number.split("/")[0])
            return counts
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists" until its parent reaps it; master is reparented to init, which
    # reaps it, so existence is a good enough signal here.
    return True


def _main_cf(
    *,
    root: Path,
    hostname: str,
    mode: PostfixMode,
    pki: TestPKI | None,
    relayhost: str | None,
    relay_tls: RelayTls,
    relay_ca_file: Path | None,
    relay_fingerprint: str | None,
    smtputf8: bool,
    chunking: bool,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The ``main.cf`` parameters for one instance (see the module docstring for why)."""
    nobody = pwd.getpwnam("nobody")
    params: dict[str, str] = {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "spool"),
        "data_directory": str(root / "data"),
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": hostname,
        "mydomain": "test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": LOOPBACK,
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "biff": "no",
        "maillog_file": str(root / "maillog"),
        "maillog_file_prefixes": str(root),
        "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled",
        "smtputf8_enable": "yes" if smtputf8 else "no",
        # CHUNKING is on by default since Postfix 3.4; hiding the keyword turns it off.
        "smtpd_discard_ehlo_keywords": "" if chunking else "chunking",
        "smtp_tls_loglevel": "1",
        "smtpd_tls_loglevel": "1",
        # Retry quickly: a test waits seconds, not Postfix's default minutes.
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "smtp_connect_timeout": "5s",
        "smtp_helo_name": "$myhostname",
        # Loopback clients count as local by default, and Postfix would add From/Date/Message-Id
        # to their messages; tests compare content, so only the Received field may be added.
        "local_header_rewrite_clients": "",
    }
    if pki is not None:
        params |= {
            "smtpd_tls_cert_file": str(pki.cert_file),
            "smtpd_tls_key_file": str(pki.key_file),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_received_header": "yes",
        }
    if mode == "hold":
        # Every accepted recipient puts its message on hold: it stays in the queue for inspection.
        # (default_transport stays "smtp": an "error" transport would make smtpd reject the RCPT.)
        params["smtpd_recipient_restrictions"] = "check_client_access static:HOLD"
    elif mode == "maildir":
        params |= {
            "default_transport": "virtual",
            "virtual_mailbox_base": str(root / "mailboxes"),
            # A "static" table matches every address; a trailing "/" means Maildir format.
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "virtual_minimum_uid": "1",
        }
    else:
        # A transport table routes "user@PORT.port.test" to [127.0.0.1]:PORT for every listed
        # port, so one instance can relay to several servers (see PostfixInstance.routed).
        params |= {
            "relayhost": relayhost or "",
            "transport_maps": f"texthash:{root / 'etc' / 'transport'}",
            "smtp_tls_security_level": relay_tls,
        }
        if relay_ca_file is not None:
            params["smtp_tls_CAfile"] = str(relay_ca_file)
        if relay_tls == "fingerprint":
            if relay_fingerprint is None:
                raise ValueError('relay_tls="fingerprint" needs relay_fingerprint')
            params |= {
                "smtp_tls_fingerprint_digest": "sha256",
                "smtp_tls_fingerprint_cert_match": relay_fingerprint,
            }
    params |= dict(extra)
    return params


@contextlib.contextmanager
def postfix_instance(
    *,
    mode: PostfixMode = "hold",
    pki: TestPKI | None = None,
    port: int | None = None,
    relayhost: str | None = None,
    relay_tls: RelayTls = "none",
    relay_ca_file: Path | None = None,
    relay_fingerprint: str | None = None,
    smtputf8: bool = True,
    chunking: bool = True,
    hostname: str = "postfix.test",
    route_ports: Sequence[int] = (),
    main_cf: Mapping[str, str] | None = None,
    keep_dir: bool = False,
) -> Iterator[PostfixInstance]:
    """Start a private Postfix on ``127.0.0.1:port`` and stop and delete it afterwards.

    ``pki`` enables smtpd STARTTLS with that certificate (RFC 3207). In mode ``"relay"``,
    ``relayhost`` is Postfix syntax (``"[127.0.0.1]:2525"``: brackets mean no MX lookup) and
    ``relay_tls`` is ``smtp_tls_security_level``: ``"encrypt"`` requires STARTTLS without
    checking the certificate, ``"verify"`` checks it against ``relay_ca_file`` and the nexthop
    name, ``"fingerprint"`` pins ``relay_fingerprint`` (see :attr:`TestPKI.sha256_fingerprint`),
    which works with an IP-address relayhost. ``route_ports`` adds a route per port (see
    :meth:`PostfixInstance.routed`). ``main_cf`` overrides or adds parameters.
    Raises :class:`~tests.interop.peers.PeerUnavailable` without root or without Postfix.
    """
    require_root("a private Postfix instance (master binds and switches to mail_owner)")
    postfix = require_program("postfix")
    port = port or free_port()
    root = make_workdir("esmtp-postfix-")
    config_dir = root / "etc"
    queue_dir = root / "spool"
    data_dir = root / "data"
    maildir = root / "mailboxes" / "inbox"
    for directory in (config_dir, queue_dir, data_dir, root / "mailboxes"):
        directory.mkdir()
    shutil.chown(data_dir, user="postfix")
    shutil.chown(root / "mailboxes", user="nobody")
    params = _main_cf(
        root=root,
        hostname=hostname,
        mode=mode,
        pki=pki,
        relayhost=relayhost,
        relay_tls=relay_tls,
        relay_ca_file=relay_ca_file,
        relay_fingerprint=relay_fingerprint,
        smtputf8=smtputf8,
        chunking=chunking,
        extra=main_cf or {},
    )
    (config_dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in params.items()))
    (config_dir / "transport").write_text(
        "".join(f"{p}.{_PORT_DOMAIN} smtp:[{LOOPBACK}]:{p}\n" for p in route_ports)
    )
    (config_dir / "master.cf").write_text(_MASTER_CF.format(listen=f"{LOOPBACK}:{port}"))
    instance = PostfixInstance(
        root=root,
        config_dir=config_dir,
        queue_dir=queue_dir,
        data_dir=data_dir,
        port=port,
        mode=mode,
        maildir=maildir,
        log_file=root / "maillog",
        hostname=hostname,
    )
    try:
        # "start" runs "check" itself, which creates the queue directories with their owners.
        started = run_tool([postfix, "-c", str(config_dir), "start"], timeout=60)
        if started.returncode != 0:
            raise PeerError(f"postfix start failed: {started.stderr}\n{instance.log()}")
        wait_for_port(port, timeout=15)
        yield instance
    finally:
        with contextlib.suppress(PeerError, subprocess.SubprocessError, OSError):
            instance.stop()
        if not keep_dir:
            shutil.rmtree(root, ignore_errors=True)
