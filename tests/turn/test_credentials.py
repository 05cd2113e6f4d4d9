"""callops.turn.credentials: TURN REST credentials, proven against a real coturn."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callops.errors import AuthenticationError, UsageError
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.allocation import Allocation
from callops.turn.coturn import LoopbackCoturn
from callops.turn.credentials import (
    credentials_document,
    ice_servers,
    rest_credentials,
    rest_expiry,
    rest_password,
)
from callops.turn.uri import parse_uri


def test_rest_credentials_are_expiry_colon_user_and_base64_hmac_sha1() -> None:
    creds = rest_credentials(Secret("north"), "agent-42", ttl=3600, now=1_700_000_000)
    assert creds.username == "1700003600:agent-42"
    expected = base64.b64encode(hmac.new(b"north", b"1700003600:agent-42", hashlib.sha1).digest()).decode()
    assert creds.credential == expected
    assert creds.expires_at == 1_700_003_600
    assert creds.ttl == 3600
    assert rest_expiry(creds.username) == 1_700_003_600
    assert rest_expiry("alice") is None


def test_rest_password_matches_coturns_documented_example() -> None:
    # The TURN REST API draft's algorithm with a fixed input, computed independently.
    assert rest_password(Secret("logen"), "1433895918506:my_username") == base64.b64encode(
        hmac.new(b"logen", b"1433895918506:my_username", hashlib.sha1).digest()
    ).decode("ascii")


@pytest.mark.parametrize(("user", "ttl"), [("", 60), ("a:b", 60), ("alice", 0), ("alice", -5)])
def test_rest_credentials_refuse_bad_user_or_ttl(user: str, ttl: int) -> None:
    with pytest.raises(UsageError):
        rest_credentials(Secret("s"), user, ttl=ttl)


def test_ice_servers_and_creds_document_have_the_rtciceserver_shape() -> None:
    creds = rest_credentials(Secret("s"), "bob", now=0)
    doc = credentials_document(
        creds, ["turn:turn.example.com:3478", "turns:turn.example.com:443?transport=tcp"]
    )
    data = json.loads(doc.model_dump_json(by_alias=True))
    assert set(data) == {"username", "credential", "ttl", "uris", "iceServers"}
    assert data["iceServers"] == [
        {
            "urls": ["turn:turn.example.com:3478", "turns:turn.example.com:443?transport=tcp"],
            "username": creds.username,
            "credential": creds.credential,
        }
    ]
    with pytest.raises(UsageError):
        ice_servers([], "u", "p")


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "callops", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_creds_command_prints_the_json_document_from_a_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("north\n")
    before = int(time.time())
    res = _cli(
        "turn", "creds", "--secret-file", str(secret_file), "--user", "agent", "--ttl", "600",
        "--uri", "turn:203.0.113.10:3478", "--uri", "turns:203.0.113.10:443?transport=tcp", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    expiry = int(doc["username"].split(":")[0])
    assert before + 600 <= expiry <= int(time.time()) + 600
    assert doc["credential"] == rest_password(Secret("north"), doc["username"])
    assert doc["iceServers"][0]["urls"] == doc["uris"]
    assert "north" not in res.stdout


def test_creds_command_takes_the_secret_from_the_environment_and_never_from_argv() -> None:
    res = _cli(
        "turn", "creds", "--user", "a", "--uri", "turn:h", "--json", env={"CALLOPS_TURN_SECRET": "west"}
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["credential"] == rest_password(
        Secret("west"), json.loads(res.stdout)["username"]
    )
    missing = _cli("turn", "creds", "--user", "a", "--uri", "turn:h", env={"CALLOPS_TURN_SECRET": ""})
    assert missing.returncode == 2
    assert "CALLOPS_TURN_SECRET" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.coturn
def test_rest_credentials_allocate_on_coturn_with_callops_client(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)

    async def allocate() -> tuple[str, int] | None:
        allocation = await Allocation.open(
            parse_uri(coturn.turn_udp), creds.username, creds.credential, timeout=10
        )
        try:
            return allocation.relayed
        finally:
            await allocation.release(timeout=2)

    relayed = run_bounded(allocate(), 30)
    assert relayed is not None and relayed[0] == "127.0.0.1"


@pytest.mark.coturn
@pytest.mark.slow
def test_rest_credentials_allocate_on_coturn_with_turnutils_uclient(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)
    base = ["turnutils_uclient", "-y", "-n", "1", "-p", str(coturn.port)]
    ok = subprocess.run(
        [*base, "-u", creds.username, "-w", creds.credential, "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout[-1000:]
    assert "Total lost packets 0" in ok.stdout
    bad = subprocess.run(
        [*base, "-u", creds.username, "-w", "not-the-password", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0
    assert "Cannot complete Allocation" in bad.stdout + bad.stderr


@pytest.mark.coturn
def test_expired_rest_credentials_are_refused_by_coturn_and_callops_says_expired(
    coturn: LoopbackCoturn,
) -> None:
    expired = rest_credentials(coturn.secret, "alice", ttl=60, now=time.time() - 3600)

    async def allocate() -> None:
        await Allocation.open(parse_uri(coturn.turn_udp), expired.username, expired.credential, timeout=10)

    with pytest.raises(AuthenticationError) as info:
        run_bounded(allocate(), 30)
    assert "401" in str(info.value)
    assert "expired" in str(info.value)
    assert info.value.exit_code == 6


@pytest.mark.coturn
def test_wrong_secret_is_a_401_naming_the_shared_secret_and_clock_skew(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(Secret("not-the-secret"), "alice", ttl=300)

    async def allocate() -> None:
        await Allocation.open(parse_uri(coturn.turns), creds.username, creds.credential, timeout=10,
                              ssl_context=_context(coturn))  # fmt: skip

    with pytest.raises(AuthenticationError) as info:
        run_bounded(allocate(), 30)
    assert str(info.value).startswith(f"TURN/TLS 127.0.0.1:{coturn.tls_port}: 401: credentials rejected")
    assert "shared secret and clock skew" in str(info.value)


def _context(coturn: LoopbackCoturn) -> ssl.SSLContext:
    from callops.turn.tls import client_context

    return client_context(coturn.ca_file)
