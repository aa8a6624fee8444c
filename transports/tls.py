"""TLS helpers shared by every adapter, server and client side (standard :mod:`ssl` only).

* :func:`server_context` / :func:`client_context` — ``ssl.SSLContext`` objects with sane
  defaults (TLS 1.2 or later; the client verifies certificates and host names by default).
* :func:`self_signed_certificate` / :func:`self_signed_context` — an ephemeral certificate for
  ``esmtp serve --self-signed``, made with ``cryptography`` (imported only when called).
* :func:`server_end_point_binding` — the ``tls-server-end-point`` channel binding of RFC 5929
  §4.1 for a certificate, for SCRAM-*-PLUS. The standard library gives no ``tls-exporter``
  (RFC 9266) and only ``tls-unique``, which is undefined for TLS 1.3, so the certificate hash is
  what works on every TLS version. Both sides compute it from the server certificate: the server
  from its own certificate file, a client from ``getpeercert(binary_form=True)``.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from esmtp_core import ChannelBinding

__all__ = [
    "client_context",
    "context_from_pem",
    "self_signed_certificate",
    "self_signed_context",
    "server_context",
    "server_end_point_binding",
    "server_end_point_binding_for_file",
    "tls_details",
]


def server_context(
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    *,
    password: str | None = None,
) -> ssl.SSLContext:
    """A server-side context with the given certificate chain and key (PEM files), TLS >= 1.2.

    Usable for STARTTLS (RFC 3207) and implicit TLS (RFC 8314) alike.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile, password)
    return context


def client_context(
    cafile: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> ssl.SSLContext:
    """A client-side context: system trust store (or ``cafile``), certificate and host name
    checks on. ``verify=False`` turns both checks off (opportunistic TLS, RFC 7435)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def self_signed_certificate(hostname: str, *, days: int = 30) -> tuple[bytes, bytes]:
    """A fresh EC P-256 key and a self-signed certificate for ``hostname`` (PEM cert, PEM key).

    Needs the optional ``cryptography`` package (``pip install esmtp-core[tls]``).
    """
    try:
        from cryptography import x509  # noqa: PLC0415
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
        from cryptography.x509.oid import NameOID  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "a self-signed certificate needs the 'cryptography' package "
            "(pip install 'esmtp-core[tls]')"
        ) from exc
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        alt = x509.DNSName(hostname)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def context_from_pem(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context from in-memory PEM data (``load_cert_chain`` only reads files, so the
    data goes through a private temporary directory that is removed at once)."""
    with tempfile.TemporaryDirectory(prefix="esmtp-tls-") as directory:
        cert_path = Path(directory) / "cert.pem"
        key_path = Path(directory) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        return server_context(cert_path, key_path)


def self_signed_context(hostname: str) -> tuple[ssl.SSLContext, ChannelBinding | None]:
    """A server context with an ephemeral self-signed certificate, and its channel binding."""
    cert_pem, key_pem = self_signed_certificate(hostname)
    return context_from_pem(cert_pem, key_pem), server_end_point_binding(cert_pem)


def server_end_point_binding(certificate: bytes) -> ChannelBinding | None:
    """``tls-server-end-point`` (RFC 5929 §4.1) for a PEM or DER certificate.

    The hash is the certificate's signature hash, with MD5 and SHA-1 replaced by SHA-256. Finding
    that hash needs ``cryptography``; without it (or for a signature without a hash, such as
    Ed25519, for which RFC 5929 defines nothing) the result is None: no binding rather than a
    wrong one.
    """
    try:
        from cryptography import x509  # noqa: PLC0415
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    except ImportError:  # pragma: no cover - depends on the installation
        return None
    if certificate.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(certificate)
    else:
        cert = x509.load_der_x509_certificate(certificate)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        return None
    name = algorithm.name.lower()
    if name in ("md5", "sha1"):
        name = "sha256"
    try:
        digest = hashlib.new(name, cert.public_bytes(serialization.Encoding.DER)).digest()
    except ValueError:
        return None
    return ChannelBinding("tls-server-end-point", digest)


def server_end_point_binding_for_file(certfile: str | os.PathLike[str]) -> ChannelBinding | None:
    """:func:`server_end_point_binding` for the first certificate of a PEM chain file."""
    return server_end_point_binding(Path(certfile).read_bytes())


def tls_details(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> tuple[str | None, str | None]:
    """``(protocol version, cipher name)`` of an established TLS session, for logs and traces."""
    if ssl_object is None:
        return None, None
    cipher = ssl_object.cipher()
    return ssl_object.version(), cipher[0] if cipher else None
