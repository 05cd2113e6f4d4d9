"""Helpers for tests of code built on callops (and callops' own tests)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from callops.jsontypes import JsonValue
    from callops.turn.coturn import CoturnProcess

T = TypeVar("T")

#: Default budget for one async test body: a hang is a bug and fails here, not at the CI limit.
DEFAULT_TIMEOUT = 60.0


def run_bounded(coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Run ``coro`` in a fresh event loop; fail with ``TimeoutError`` after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def fuzz_examples(default: int) -> int:
    """How many inputs one property-based test generates: ``CALLOPS_FUZZ_EXAMPLES`` or ``default``."""
    raw = os.environ.get("CALLOPS_FUZZ_EXAMPLES", "")
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else default


@contextmanager
def logged_process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` with stdout and stderr written to ``log``; terminated (killed after 10 s) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def tls_coturn(
    workdir: Path,
    certificate: tuple[Path, Path],
    secret: str,
    *,
    relay_ports: int = 10,
    allow_loopback_peers: bool = False,
) -> tuple[CoturnProcess, int, int]:
    """A coturn (not started) on free loopback ports serving TLS with ``certificate`` (cert, key).

    Its shared ``secret`` is in ``workdir/secret``, its config and run directory in ``workdir``.
    Returns the process, its UDP/TCP port and its TLS port.
    """
    from callops.secret import Secret
    from callops.turn.config import TurnDeployment, write_turnserver_conf
    from callops.turn.coturn import CoturnProcess, free_port

    port, tls_port, relay = free_port(), free_port(), free_port()
    secret_file = workdir / "secret"
    secret_file.write_text(f"{secret}\n")
    deployment = TurnDeployment.loopback(
        port=port,
        min_port=relay,
        max_port=relay + relay_ports,
        secret_file=secret_file,
        allow_loopback_peers=allow_loopback_peers,
        tls_port=tls_port,
        tls_cert_file=certificate[0],
        tls_key_file=certificate[1],
    )
    conf = write_turnserver_conf(deployment, workdir / "turnserver.conf", secret=Secret(secret))
    process = CoturnProcess(conf, workdir=workdir / "coturn", ready_address=("127.0.0.1", port))
    return process, port, tls_port


# --- ExConversationChangeNotification bodies, shaped like the seed and the protocol reference ----


def call_dialog(
    dialog_id: str,
    state: str,
    *,
    mode: str,
    service_id: str,
    participants: list[object],
    created_ms: int,
    updated_ms: int,
    expires: float | None,
) -> dict[str, object]:
    """A COBROWSE call dialog (``expires`` left out when None)."""
    meta: dict[str, object] = {
        "serviceId": service_id,
        "mode": mode,
        "sessionState": state,
        "dialogId": dialog_id,
    }
    if expires is not None:
        meta["expires"] = expires
    return {
        "dialogId": dialog_id,
        "participants": participants,
        "dialogType": "OTHER",
        "channelType": "COBROWSE",
        "metaData": meta,
        "state": "OPEN",
        "creationTs": created_ms,
        "metaDataLastUpdateTs": updated_ms,
    }


def closed_call_dialog(dialog_id: str) -> dict[str, object]:
    """The tutorial's partial CLOSED update of a call dialog."""
    return {
        "dialogId": dialog_id,
        "dialogType": "OTHER",
        "channelType": "COBROWSE",
        "metaData": {"sessionState": "CLOSED"},
    }


def main_dialog(
    conversation_id: str, consumer: str, agent: str, created_ms: int, updated_ms: int
) -> dict[str, object]:
    """The MAIN (messaging) dialog of a conversation."""
    return {
        "dialogId": conversation_id,
        "participantsDetails": [
            {"id": consumer, "role": "CONSUMER"},
            {"id": agent, "role": "ASSIGNED_AGENT"},
        ],
        "dialogType": "MAIN",
        "channelType": "MESSAGING",
        "state": "OPEN",
        "creationTs": created_ms,
        "metaDataLastUpdateTs": updated_ms,
    }


def conversation_roles(consumer: str, agent: str) -> list[object]:
    """The conversation participants with their roles: the assigned agent and the consumer."""
    return [{"id": agent, "role": "ASSIGNED_AGENT"}, {"id": consumer, "role": "CONSUMER"}]


def conversation_upsert(
    conversation_id: str,
    dialogs: list[dict[str, object]],
    *,
    participants: list[object],
    start_ms: int,
    updated_ms: int,
    stage: str = "OPEN",
    subscription_id: str = "sub-1",
) -> dict[str, object]:
    """A notification body with one UPSERT of a conversation holding ``dialogs`` (the MAIN one included)."""
    details: dict[str, object] = {
        "skillId": "496645413",
        "brandId": "64467156",
        "participants": participants,
        "dialogs": dialogs,
        "state": "OPEN" if stage == "OPEN" else "CLOSE",
        "stage": stage,
        "startTs": start_ms,
        "metaDataLastUpdateTs": updated_ms,
    }
    result = {"convId": conversation_id, "effectiveTTR": -1, "conversationDetails": details}
    return {"subscriptionId": subscription_id, "changes": [{"type": "UPSERT", "result": result}]}


def conversation_delete(conversation_id: str, subscription_id: str = "sub-1") -> dict[str, object]:
    """A notification body with one DELETE of a conversation."""
    return {
        "subscriptionId": subscription_id,
        "changes": [{"type": "DELETE", "result": {"convId": conversation_id}}],
    }


__all__ = [
    "DEFAULT_TIMEOUT",
    "call_dialog",
    "closed_call_dialog",
    "conversation_delete",
    "conversation_roles",
    "conversation_upsert",
    "fuzz_examples",
    "logged_process",
    "main_dialog",
    "run_bounded",
    "tls_coturn",
]


def json_at(value: JsonValue, *path: str | int) -> JsonValue:
    """The part of a JSON document at ``path`` (object keys, array indexes); fails naming the step
    where the document has another shape."""
    for step in path:
        if isinstance(step, str):
            assert isinstance(value, dict), f"at {step!r}: expected an object, got {value!r}"
            value = value[step]
        else:
            assert isinstance(value, list), f"at [{step}]: expected an array, got {value!r}"
            value = value[step]
    return value


def json_str(value: JsonValue, *path: str | int) -> str:
    """The string at ``path`` in a JSON document (see `json_at`)."""
    found = json_at(value, *path)
    assert isinstance(found, str), f"at {path!r}: expected a string, got {found!r}"
    return found
