"""Readiness profiles: a brand's published call requirements as data, checked item by item.

A profile (``callops probe --profile liveperson``, or ``--profile FILE`` for a brand's own) is YAML:
``name``, ``title``, ``source`` and ``items``, each with a stable ``id``, the ``requirement`` as the
brand words it, a ``check`` and its parameters, whether it is ``required`` and the ``fix``:

* ``relay`` (``transport``, ``port``): the relay data test through the configured TURN URI with that
  transport and port carried data;
* ``stun`` (``transport``, ``port``): a STUN Binding to the configured STUN URI on that port answered;
* ``tls-certificate``: every TLS server's certificate is one browsers accept (warn under 14 days);
* ``relay-range`` (``ports``): this site reached a relayed address over UDP, and its port is in the range;
* ``bandwidth`` (``media``, ``kbps``, ``floor_kbps``, ``duration_s``): a call-shaped flow through the
  best working relay got ``kbps`` through (``warn`` when only ``floor_kbps``).

An item whose port and transport the configured servers do not serve is ``skipped``: the
checklist is about the brand's servers as they are. :func:`checklist` is pure: it turns the typed
probe results into :class:`ChecklistItem` s; :func:`plan` says which extra probes a profile needs.
Exit code 1 when a required item fails, else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from callops.errors import ConfigError, UsageError
from callops.orchestrator.probe.onesite_report import ProbeReport
from callops.turn.results import (
    BandwidthResult,
    ProbeResult,
    ProbeStatus,
    RelayTestResult,
    RelayTransport,
    StunResult,
    TlsResult,
)
from callops.turn.uri import ServerUri
from callops.validation import describe_validation_error

CheckKind = Literal["relay", "stun", "tls-certificate", "relay-range", "bandwidth"]
ItemStatus = Literal["pass", "fail", "warn", "skipped"]
BUILT_IN = ("liveperson",)


class ProfileItem(BaseModel):
    """One requirement of a profile."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    requirement: str = Field(min_length=1)
    check: CheckKind
    transport: RelayTransport | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    ports: tuple[int, int] | None = None
    media: Literal["voice", "video"] | None = None
    kbps: float | None = Field(default=None, gt=0)
    floor_kbps: float | None = Field(default=None, gt=0)
    duration_s: float = Field(default=2.5, ge=0.2, le=10)
    required: bool = True
    fix: str = Field(min_length=1)

    @model_validator(mode="after")
    def _parameters_of_the_check(self) -> ProfileItem:
        needs: dict[str, tuple[str, ...]] = {
            "relay": ("transport", "port"),
            "stun": ("transport", "port"),
            "relay-range": ("ports",),
            "bandwidth": ("media", "kbps", "floor_kbps"),
        }
        missing = [f for f in needs.get(self.check, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"check {self.check!r} needs {', '.join(missing)}")
        if self.check == "stun" and self.transport == "tls":
            raise ValueError("check 'stun' runs over udp or tcp")
        return self


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    title: str
    source: str = ""
    items: list[ProfileItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Profile:
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                raise ValueError(f"item id {item.id!r} appears twice")
            seen.add(item.id)
        return self


class ChecklistItem(BaseModel):
    """One line of the checklist."""

    id: str
    requirement: str
    measured: str
    status: ItemStatus
    required: bool
    #: what to change (empty when the item passed)
    fix: str | None = None


class Checklist(BaseModel):
    """``callops probe --profile NAME --json``."""

    profile: str
    title: str
    source: str
    items: list[ChecklistItem]
    #: 1 when a required item failed, else 0
    exit_code: int
    duration_ms: float
    #: the one-site report the checklist was made from
    probe: ProbeReport


def load_profile(name_or_file: str) -> Profile:
    """A built-in profile by name, or a YAML file; :class:`ConfigError` names the field and the fix."""
    import yaml

    if name_or_file in BUILT_IN:
        shipped = resources.files("callops.orchestrator.probe.profiles")
        text = shipped.joinpath(f"{name_or_file}.yaml").read_text()
        source = f"built-in profile {name_or_file}"
    else:
        path = Path(name_or_file)
        if not path.is_file():
            raise UsageError(
                f"--profile {name_or_file}: no such built-in profile or file",
                hint=f"use one of {', '.join(BUILT_IN)} or a YAML file",
            )
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}", hint="fix the YAML syntax") from None
    try:
        return Profile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = describe_validation_error(exc)
        raise ConfigError(f"{source}: {problems}", hint="fix the named field(s)") from None


# -- which probes a profile needs --------------------------------------------------------------------


def _served(item: ProfileItem, uris: Sequence[ServerUri]) -> ServerUri | None:
    """The configured URI that serves ``item``'s transport and port, if any."""
    for uri in uris:
        transport = "tls" if uri.secure else uri.transport
        if transport == item.transport and uri.port == item.port:
            return uri
    return None


def best_relay(report_results: Sequence[ProbeResult]) -> str | None:
    """The TURN URI a browser here would relay through: the first working one, UDP before TCP before TLS."""
    working = [r for r in report_results if isinstance(r, RelayTestResult) and r.ok and r.data.peer != "host"]
    for transport in ("udp", "tcp", "tls"):
        for r in working:
            if r.data.transport == transport:
                return r.target
    return None


# -- the checklist (pure) ------------------------------------------------------------------------------


def _line(item: ProfileItem, status: ItemStatus, measured: str) -> ChecklistItem:
    return ChecklistItem(
        id=item.id,
        requirement=item.requirement,
        measured=measured,
        status=status,
        required=item.required,
        fix=None if status in ("pass", "skipped") else item.fix,
    )


def _failed(item: ProfileItem) -> ItemStatus:
    """An unmet item: ``fail`` when required, else ``warn``."""
    return "fail" if item.required else "warn"


def _relay_item(
    item: ProfileItem, uris: Sequence[ServerUri], results: Sequence[ProbeResult]
) -> ChecklistItem:
    uri = _served(item, uris)
    what = f"{item.transport}/{item.port}"
    if uri is None:
        return _line(item, "skipped", f"the configured TURN servers offer nothing on {what}")
    result = next(
        (
            r
            for r in results
            if isinstance(r, RelayTestResult) and r.target == str(uri) and r.data.peer != "host"
        ),
        None,
    )
    if result is None:
        return _line(item, "skipped", f"{uri} was not tested")
    if result.status is ProbeStatus.SKIPPED:
        return _line(item, "skipped", result.detail)
    if result.ok:
        return _line(item, "pass", f"{uri}: relay carried data ({result.detail})")
    return _line(item, _failed(item), f"{uri}: {result.error}")


def _stun_item(item: ProfileItem, stun: Sequence[ServerUri], results: Sequence[ProbeResult]) -> ChecklistItem:
    # A STUN server answers over UDP and TCP on its port: the URI's port is what it serves.
    uri = next((u for u in stun if not u.secure and u.port == item.port), None)
    if uri is None:
        return _line(item, "skipped", f"no configured STUN server on {item.transport}/{item.port}")
    kind = f"stun-{item.transport}"
    result = next(
        (r for r in results if isinstance(r, StunResult) and r.kind == kind and r.target == str(uri)), None
    )
    if result is None:
        return _line(item, "skipped", f"{uri} was not tested over {item.transport}")
    if result.ok:
        return _line(item, "pass", f"{uri}: answered ({result.detail})")
    return _line(item, _failed(item), f"{uri}: {result.error}")


def _tls_item(item: ProfileItem, results: Sequence[ProbeResult]) -> ChecklistItem:
    checks = [r for r in results if isinstance(r, TlsResult)]
    if not checks:
        return _line(item, "skipped", "no TLS server configured (turns:)")
    bad = [r for r in checks if r.status is ProbeStatus.FAIL]
    if bad:
        return _line(item, _failed(item), "; ".join(f"{r.target}: {r.error}" for r in bad))
    soon = [r for r in checks if r.status is ProbeStatus.WARN]
    if soon:
        return _line(item, "warn", "; ".join(f"{r.target}: {r.detail}" for r in soon))
    return _line(item, "pass", "; ".join(f"{r.target}: {r.detail}" for r in checks))


def _range_item(item: ProfileItem, results: Sequence[ProbeResult]) -> ChecklistItem:
    assert item.ports is not None
    low, high = item.ports
    result = next((r for r in results if isinstance(r, RelayTestResult) and r.data.peer == "host"), None)
    if result is None:
        return _line(item, "skipped", "no TURN server over UDP to allocate from")
    if result.status is ProbeStatus.SKIPPED:
        return _line(item, "skipped", result.detail)
    if not result.ok:
        return _line(item, _failed(item), str(result.error))
    port = int(str(result.data.peer_address).rsplit(":", 1)[1])
    if not low <= port <= high:
        return _line(
            item,
            "warn",
            f"relayed port {port} reached, but it is outside {low}-{high}: a firewall opened as the "
            "brand asks would drop it (set the TURN server's min-port/max-port inside the range)",
        )
    return _line(item, "pass", f"relayed port {port} (in {low}-{high}) reached over UDP from this site")


def _bandwidth_item(item: ProfileItem, results: Sequence[ProbeResult]) -> ChecklistItem:
    result = next(
        (
            r
            for r in results
            if isinstance(r, BandwidthResult)
            and (r.data.media, r.data.target_kbps) == (item.media, item.kbps)
        ),
        None,
    )
    if result is None:
        return _line(item, _failed(item), "no working relay to test through")
    if result.status is ProbeStatus.SKIPPED:
        return _line(item, "skipped", result.detail)
    if result.ok:
        return _line(item, "pass", result.detail)
    if result.status is ProbeStatus.WARN:
        return _line(item, "warn", result.detail)
    return _line(item, _failed(item), str(result.error))


def checklist_items(
    profile: Profile, stun: Sequence[ServerUri], turn: Sequence[ServerUri], results: Sequence[ProbeResult]
) -> list[ChecklistItem]:
    """Every item of ``profile`` against the typed results of the probes that ran."""
    out = []
    for item in profile.items:
        if item.check == "relay":
            out.append(_relay_item(item, turn, results))
        elif item.check == "stun":
            out.append(_stun_item(item, stun, results))
        elif item.check == "tls-certificate":
            out.append(_tls_item(item, results))
        elif item.check == "relay-range":
            out.append(_range_item(item, results))
        else:
            out.append(_bandwidth_item(item, results))
    return out


def exit_code(items: Sequence[ChecklistItem]) -> int:
    return 1 if any(i.required and i.status == "fail" for i in items) else 0


__all__ = [
    "BUILT_IN",
    "CheckKind",
    "Checklist",
    "ChecklistItem",
    "ItemStatus",
    "Profile",
    "ProfileItem",
    "best_relay",
    "checklist_items",
    "exit_code",
    "load_profile",
]
