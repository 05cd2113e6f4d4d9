"""Self-signed TLS certificates for ``turns:`` on loopback and in the NAT lab.

:func:`make_self_signed` writes a certificate that is its own CA (so the same file serves as the
server's ``cert`` and the client's CA file) with the given hosts as subject alternative names, and
:func:`client_context` builds the client-side :class:`ssl.SSLContext` for probes.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from callops.errors import UsageError


def make_self_signed(
    directory: str | os.PathLike[str],
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 30,
    name: str = "turn",
) -> tuple[Path, Path]:
    """Write ``<name>.crt`` and ``<name>.key`` (EC P-256) into ``directory``; return their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not hosts:
        raise UsageError("a self-signed certificate needs at least one host name or IP address")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = out / f"{name}.crt"
    key_path = out / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def client_context(
    ca_file: str | os.PathLike[str] | None = None, *, insecure: bool = False
) -> ssl.SSLContext:
    """A client TLS context: system CAs, or ``ca_file``; ``insecure`` skips verification (documented)."""
    cadata: str | bytes | None = None
    if ca_file is not None:
        from callops.files import CONFIG_CAP, read_user_file

        # Bounded and non-blocking (a FIFO or /dev/zero as --ca-file): OpenSSL would read forever.
        raw = read_user_file(ca_file, what="CA file", cap=CONFIG_CAP)
        if not raw.strip():
            raise UsageError(f"CA file {ca_file} is empty", hint="give a PEM certificate file")
        # PEM text or DER; PEM text outside ASCII is refused by OpenSSL below
        cadata = raw.decode("ascii", errors="replace") if raw.lstrip().startswith(b"-----") else raw
    try:
        context = ssl.create_default_context(cadata=cadata)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise UsageError(
            f"CA file {ca_file} cannot be loaded: {exc}", hint="give a PEM certificate file"
        ) from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


__all__ = ["client_context", "make_self_signed"]
