"""The TLS prober: handshake time and the server certificate's expiry, verified or not.

A verifying handshake first (system CAs or ``ca_file``, the target's name). If verification fails,
a second handshake without verification still reads the certificate, so an expired or untrusted
certificate reports its expiry (the number an alert needs) alongside the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from callops.errors import CallopsError, NetworkError
from callops.turn.stun import transport_error


@dataclass(frozen=True)
class CertificateCheck:
    """One TLS endpoint's handshake and leaf certificate."""

    handshake_s: float
    not_after: float
    verified: bool
    #: why verification failed (None when verified)
    verify_error: str | None
    version: str
    cipher: str
    subject: str


async def _handshake(
    host: str, port: int, context: ssl.SSLContext, server_name: str
) -> tuple[bytes, float, str, str]:
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        _, stream = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_name)
        writer = stream
        elapsed = time.monotonic() - started
        ssl_object = stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise NetworkError(f"TLS {host}:{port}: the server sent no certificate")
        cipher = ssl_object.cipher()
        return der, elapsed, str(ssl_object.version()), str(cipher[0] if cipher else "")
    finally:
        if writer is not None:
            writer.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.2)


async def _read_certificate(
    host: str, port: int, server_name: str, ca_file: Path | None
) -> tuple[tuple[bytes, float, str, str], str | None]:
    """The handshake's certificate and figures, and why it was not trusted (None: it was): a
    certificate that fails verification is read again without verifying, to report on it."""
    from callops.turn.tls import client_context

    try:
        return await _handshake(host, port, client_context(ca_file), server_name), None
    except ssl.SSLCertVerificationError as exc:
        why = f"TLS {host}:{port}: certificate rejected: {exc.verify_message or exc}"
    return await _handshake(host, port, client_context(None, insecure=True), server_name), why


async def check_certificate(
    host: str,
    port: int,
    *,
    timeout: float,
    server_name: str | None = None,
    ca_file: Path | None = None,
) -> CertificateCheck:
    """Handshake with ``host:port`` (both handshakes, if the certificate is not trusted, within
    ``timeout``); :class:`NetworkError` if no certificate could be read at all."""
    from cryptography import x509

    try:
        async with asyncio.timeout(timeout):
            (der, elapsed, version, cipher), verify_error = await _read_certificate(
                host, port, server_name or host, ca_file
            )
    except CallopsError:
        raise
    except (OSError, TimeoutError, EOFError) as exc:
        raise transport_error(f"TLS {host}:{port}", exc) from None
    cert = x509.load_der_x509_certificate(der)
    return CertificateCheck(
        handshake_s=elapsed,
        not_after=cert.not_valid_after_utc.timestamp(),
        verified=verify_error is None,
        verify_error=verify_error,
        version=version,
        cipher=cipher,
        subject=cert.subject.rfc4514_string(),
    )


__all__ = ["CertificateCheck", "check_certificate"]
