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
    host: str, port: int, context: ssl.SSLContext, server_name: str, timeout: float
) -> tuple[bytes, float, str, str]:
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        _, stream = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=server_name), timeout
        )
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


async def check_certificate(
    host: str,
    port: int,
    *,
    timeout: float,
    server_name: str | None = None,
    ca_file: Path | None = None,
) -> CertificateCheck:
    """Handshake with ``host:port``; :class:`NetworkError` if no certificate could be read at all."""
    from cryptography import x509

    from callops.turn.tls import client_context

    label = f"TLS {host}:{port}"
    name = server_name or host
    deadline = time.monotonic() + timeout
    verify_error: str | None = None
    try:
        der, elapsed, version, cipher = await _handshake(
            host, port, client_context(ca_file), name, max(0.001, deadline - time.monotonic())
        )
    except ssl.SSLCertVerificationError as exc:
        verify_error = f"{label}: certificate rejected: {exc.verify_message or exc}"
        try:
            der, elapsed, version, cipher = await _handshake(
                host,
                port,
                client_context(None, insecure=True),
                name,
                max(0.001, deadline - time.monotonic()),
            )
        except (OSError, TimeoutError, EOFError) as again:
            raise transport_error(label, again) from None
    except CallopsError:
        raise
    except (OSError, TimeoutError, EOFError) as exc:
        raise transport_error(label, exc) from None
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
