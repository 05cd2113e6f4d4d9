"""TLS for ``turns:``: test certificates, the client context, and the certificate as browsers see it.

:func:`make_self_signed` writes a certificate that is its own CA (so the same file serves as the
server's ``cert`` and the client's CA file) with the given hosts as subject alternative names;
:func:`make_ca` and :func:`make_certificate` write a private CA and a server certificate it signs
(any validity window, any names -- the tests' expired and wrong-name certificates).
:func:`client_context` builds the client-side :class:`ssl.SSLContext` for probes.

:func:`certificate_check` is the probe: Chromium checks a ``turns:`` certificate like an HTTPS one
(chain to a trusted root, name, validity) and drops the server with ICE error 701 otherwise, so
a TLS relay that "works" with ``--insecure`` or a private CA may still be useless to visitors.
It fetches the chain the server sends (one handshake without verification), asks OpenSSL whether it
chains to a trusted CA (a second handshake, expiry ignored so that trust and time are reported
separately), and :func:`assess` -- pure -- decides: a self-signed leaf, an untrusted chain, a name
that does not match, an expired or not-yet-valid certificate fail with the fix; under
:data:`WARN_DAYS` days left is a warning.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from callops.errors import UsageError
from callops.turn.results import CertificateInfo, ProbeData, ProbeStatus, TlsData, TlsResult
from callops.turn.uri import ServerUri, parse_uri

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

#: A certificate with fewer days left than this is a warning (issue 12: "warn under 14 days").
WARN_DAYS = 14
#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME: verify the chain, leave the validity window to :func:`assess`.
_NO_CHECK_TIME = 0x200000
#: ``_ssl.ENCODING_DER`` (the private chain API of Python < 3.13 returns ``_ssl.Certificate`` objects)
_ENCODING_DER = 2


def make_self_signed(
    directory: str | os.PathLike[str],
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    *,
    days: int = 30,
    name: str = "turn",
) -> tuple[Path, Path]:
    """Write ``<name>.crt`` and ``<name>.key`` (EC P-256) into ``directory``; return their paths."""
    from cryptography import x509

    if not hosts:
        raise UsageError("a self-signed certificate needs at least one host name or IP address")
    now = datetime.datetime.now(datetime.UTC)
    return _issue(
        directory,
        name,
        hosts[0],
        valid=(now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)),
        extensions=[
            (x509.SubjectAlternativeName(_alt_names(hosts)), False),
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (_key_usage(key_agreement=True, crl_sign=False), True),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )


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


def _write_key_and_cert(
    out: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / f"{name}.crt", out / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _common_name(name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _key_usage(*, key_agreement: bool, crl_sign: bool) -> x509.KeyUsage:
    """Signing certificates (``key_cert_sign``) with an EC key; ``key_agreement`` for ECDH suites."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=True,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey],
    *,
    valid: tuple[datetime.datetime, datetime.datetime],
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """One certificate for ``public_key`` signed (SHA-256) by ``issuer`` (its name and key), with a
    random serial, the validity window ``valid`` and the ``(extension, critical)`` pairs in order."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0])
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer[1], hashes.SHA256())


def _issue(
    directory: str | os.PathLike[str],
    name: str,
    common_name: str,
    *,
    valid: tuple[datetime.datetime, datetime.datetime],
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
    key_id: bool = False,
) -> tuple[Path, Path]:
    """Write ``<name>.key`` (a new EC P-256 key) and ``<name>.crt``, its certificate for
    ``common_name`` signed by ``issuer`` (default: itself); ``key_id`` adds its SubjectKeyIdentifier."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    subject = _common_name(common_name)
    if key_id:
        extensions = [*extensions, (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)]
    cert = _sign(subject, key.public_key(), issuer or (subject, key), valid=valid, extensions=extensions)
    return _write_key_and_cert(Path(directory), name, key, cert)


def make_ca(directory: str | os.PathLike[str], *, name: str = "ca", days: int = 30) -> tuple[Path, Path]:
    """A private CA (``<name>.crt``, ``<name>.key``) for :func:`make_certificate`."""
    from cryptography import x509

    now = datetime.datetime.now(datetime.UTC)
    return _issue(
        directory,
        name,
        f"callops {name}",
        valid=(now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)),
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_key_usage(key_agreement=False, crl_sign=True), True),
        ],
        key_id=True,
    )


def make_certificate(
    directory: str | os.PathLike[str],
    ca: tuple[Path, Path],
    hosts: Sequence[str],
    *,
    name: str = "server",
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> tuple[Path, Path]:
    """A server certificate for ``hosts`` signed by ``ca`` (default: valid from yesterday for 30 days)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if not hosts:
        raise UsageError("a certificate needs at least one host name or IP address")
    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    return _issue(
        directory,
        name,
        hosts[0],
        issuer=(ca_cert.subject, ca_key),
        valid=(
            not_before or now - datetime.timedelta(days=1),
            not_after or now + datetime.timedelta(days=30),
        ),
        extensions=[
            (x509.SubjectAlternativeName(_alt_names(hosts)), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        ],
    )


# -- the certificate as a browser sees it ----------------------------------------------------------


def _names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    out += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return out


def name_matches(server_name: str, names: Sequence[str]) -> bool:
    """RFC 6125 as browsers apply it: subjectAltName only, one left-most ``*`` label, IPs exactly."""
    try:
        ip = ipaddress.ip_address(server_name.strip("[]"))
    except ValueError:
        ip = None
    for name in names:
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                continue
            continue
        host, pattern = server_name.lower().rstrip("."), name.lower().rstrip(".")
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host and host.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, Exception):  # InvalidSignature and unsupported key types
        return False
    return True


def _certificate_info(cert: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        self_signed=_self_signed(cert),
    )


def _browser_objections(
    leaf: x509.Certificate,
    names: Sequence[str],
    server_name: str,
    *,
    trusted: bool,
    matches: bool,
    now: datetime.datetime,
    days_left: float,
) -> tuple[list[str], list[str]]:
    """Why a browser rejects ``leaf`` (problem names, in order) and the fix for each."""
    objections: list[tuple[str, str]] = []
    if _self_signed(leaf):
        objections.append(
            (
                "self-signed",
                "use a certificate from a public CA (e.g. Let's Encrypt): "
                "visitors' browsers never trust a self-signed one",
            )
        )
    elif not trusted:
        objections.append(
            ("untrusted", "serve the full chain (leaf + intermediates) from a CA browsers trust")
        )
    if not matches:
        objections.append(
            (
                "name-mismatch",
                f"the certificate names {', '.join(names) or 'nothing'}: get one for {server_name}, "
                "or point the turns: URI at a name it covers",
            )
        )
    if now < leaf.not_valid_before_utc:
        objections.append(("not-yet-valid", "check the server's clock and the certificate's start date"))
    if days_left < 0:
        objections.append(("expired", "renew the certificate and reload coturn (SIGUSR2)"))
    return [problem for problem, _ in objections], [fix for _, fix in objections]


def assess(
    chain: Sequence[x509.Certificate],
    server_name: str,
    *,
    trusted: bool,
    now: datetime.datetime,
    warn_days: int = WARN_DAYS,
) -> tuple[ProbeStatus, str, TlsData]:
    """``(status, detail, data)`` for the chain a server sent (leaf first); with ``fail`` the detail is
    the error sentence with the fix. Pure.

    ``trusted``: OpenSSL verified the chain to a CA of the trust store (time not checked).
    """
    leaf = chain[0]
    names = _names(leaf)
    days_left = (leaf.not_valid_after_utc - now).total_seconds() / 86400
    matches = name_matches(server_name, names)
    problems, fixes = _browser_objections(
        leaf, names, server_name, trusted=trusted, matches=matches, now=now, days_left=days_left
    )
    if 0 <= days_left < warn_days:
        problems.append("expires-soon")
    accepts = not (set(problems) - {"expires-soon"})
    data = TlsData(
        chain=[_certificate_info(c) for c in chain],
        names=names,
        server_name=server_name,
        not_after=leaf.not_valid_after_utc.isoformat(),
        days_left=round(days_left, 2),
        trusted=trusted and "self-signed" not in problems,
        name_matches=matches,
        browser_accepts=accepts,
        problems=problems,
    )
    summary = f"{leaf.subject.rfc4514_string()} by {leaf.issuer.rfc4514_string()}, {days_left:.0f} days left"
    if not accepts:
        why = f"browsers would reject it ({', '.join(problems)}): {'; '.join(fixes)}"
        return ProbeStatus.FAIL, f"{server_name}: {why}", data
    if problems:
        return ProbeStatus.WARN, f"{summary}: renew it soon (under {warn_days} days left)", data
    return ProbeStatus.OK, f"{summary}; browsers accept it", data


async def _handshake(uri: ServerUri, context: ssl.SSLContext, timeout: float) -> ssl.SSLObject:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(uri.host, uri.port, ssl=context, server_hostname=uri.host), timeout
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        return ssl_object
    finally:
        writer.close()
        del reader


def _peer_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The chain as sent, DER, leaf first (Python 3.13 ``get_unverified_chain``; the leaf before)."""
    getter = getattr(ssl_object, "get_unverified_chain", None) or getattr(
        getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is not None:
        chain = getter() or []
        return [c if isinstance(c, bytes) else c.public_bytes(_ENCODING_DER) for c in chain]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


async def certificate_check(
    uri: ServerUri | str,
    timeout: float,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    warn_days: int = WARN_DAYS,
) -> TlsResult:
    """The ``turns:`` server's certificate as a browser sees it (chain, names, expiry, trust)."""
    from cryptography import x509

    from callops.turn.probes import run_probe

    server_uri = uri if isinstance(uri, ServerUri) else parse_uri(uri)

    async def body(deadline: float) -> tuple[ProbeStatus, str, ProbeData]:
        fetch = ssl.create_default_context()
        fetch.check_hostname = False
        fetch.verify_mode = ssl.CERT_NONE
        started = time.monotonic()
        try:
            sent = await _handshake(server_uri, fetch, max(0.001, deadline - time.monotonic()))
        except (OSError, ssl.SSLError) as exc:
            raise_network(server_uri, exc)
        connect_ms = (time.monotonic() - started) * 1000
        version = sent.version()
        chain = [x509.load_der_x509_certificate(der) for der in _peer_chain(sent)]
        if not chain:
            from callops.errors import NetworkError

            raise NetworkError(f"{server_uri.label}: the server sent no certificate")
        verify = client_context(ca_file)
        verify.check_hostname = False
        verify.verify_flags |= _NO_CHECK_TIME
        try:
            await _handshake(server_uri, verify, max(0.001, deadline - time.monotonic()))
            trusted = True
        except ssl.SSLCertVerificationError:
            trusted = False
        except (OSError, ssl.SSLError) as exc:
            raise_network(server_uri, exc)
        status, detail, data = assess(
            chain,
            server_uri.host,
            trusted=trusted,
            now=datetime.datetime.now(datetime.UTC),
            warn_days=warn_days,
        )
        data.tls_version = version
        data.connect_ms = round(connect_ms, 3)
        return status, detail, data

    return await run_probe(
        TlsResult, "tls", server_uri, timeout, body, base=TlsData(server_name=server_uri.host)
    )


def raise_network(uri: ServerUri, exc: BaseException) -> None:
    from callops.errors import NetworkError

    reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    raise NetworkError(
        f"{uri.label}: TLS connection failed: {reason}", hint="is the TLS port open?"
    ) from None


__all__ = [
    "WARN_DAYS",
    "assess",
    "certificate_check",
    "client_context",
    "make_ca",
    "make_certificate",
    "make_self_signed",
    "name_matches",
]
