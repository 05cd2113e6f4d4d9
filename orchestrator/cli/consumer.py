"""``callops consumer``: the consumer side of the Messaging Window API, headless.

``callops consumer listen --account A`` starts the way a LivePerson consumer does: it finds the
account's websocket domain and IDP through the Domain API (CSDS, ``--csds`` or ``CALLOPS_CSDS``
override LivePerson's), signs up for an unauthenticated identity unless a JWT is given
(``--jwt-file`` or ``CALLOPS_JWT``: an authenticated consumer), requests a conversation,
subscribes to its conversations and prints one line per invitation event and per lpTag payload
the page would publish (one JSON object per line with ``--json``). A URL argument skips the
websocket discovery. Heavy imports (websockets, httpx) happen inside the command.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import click
from pydantic import BaseModel, ConfigDict

from callops.consumer.discovery import CSDS_ENV, DEFAULT_CSDS
from callops.errors import UsageError
from callops.secret import load_secret

if TYPE_CHECKING:
    from callops.consumer.client import ConsumerClient
    from callops.consumer.lptag import AutoAnswer, LpTagPublication, Visitor
    from callops.consumer.tracker import CallInvited, TrackerEvent
    from callops.orchestrator.emulator import CoBrowseChannel
    from callops.secret import Secret

JWT_ENV = "CALLOPS_JWT"


class ListenRecord(BaseModel):
    """One line of ``callops consumer listen --json``."""

    model_config = ConfigDict(frozen=True)

    #: ``ready``: connected and subscribed; ``event``: a tracker event; ``lptag``: a payload the page
    #: would publish
    kind: Literal["ready", "event", "lptag"]
    #: ``ready``; ``invited`` | ``accepted`` | ``closed`` for events; the lpTag event name for payloads
    name: str
    #: epoch seconds when the line was produced
    at: float
    #: the conversation (for ``ready``: the one requested, if any)
    conversationId: str | None = None
    #: ``ready`` only: the conversation subscription
    subscriptionId: str | None = None
    #: ``ready`` only: the consumer id (the JWT's ``sub``) and whether it came from a signup
    consumerId: str | None = None
    identity: Literal["unauthenticated", "authenticated"] | None = None
    dialogId: str | None = None
    serviceId: str | None = None
    mode: str | None = None
    agentId: str | None = None
    #: invitations: epoch seconds after which the invitation is void
    expires: float | None = None
    #: closed calls: ended | cancelled | declined | expired | unknown
    reason: str | None = None
    #: lpTag payloads: the lpTag channel (``lpCoBrowse``) and the payload
    channel: str | None = None
    data: dict[str, Any] | None = None
    #: lpTag payloads delivered to a CoBrowse service (``--cobrowse-url``): its answer
    delivered: bool | None = None


def render_line(record: ListenRecord) -> str:
    if record.kind == "ready":
        conversation = record.conversationId or "-"
        line = f"ready    conversation={conversation} subscriptionId={record.subscriptionId}"
        if record.identity:
            line += f" identity={record.identity}"
        return line
    if record.kind == "lptag":
        import json

        line = f"lptag    {record.channel} {record.name} {json.dumps(record.data, separators=(',', ':'))}"
        if record.delivered is not None:
            line += " (delivered)" if record.delivered else " (not delivered)"
        return line
    parts = [f"{record.name:<8} conversation={record.conversationId} dialog={record.dialogId}"]
    parts.append(f"mode={record.mode} serviceId={record.serviceId}")
    if record.agentId:
        parts.append(f"agent={record.agentId}")
    if record.expires is not None:
        parts.append("expires=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.expires)))
    if record.reason:
        parts.append(f"reason={record.reason}")
    return " ".join(parts)


@click.group()
def consumer() -> None:
    """The consumer side: follow voice/video call invitations like a web page would."""


@consumer.command()
@click.argument("url", required=False)
@click.option("--account", required=True, help="LivePerson account id (site id).")
@click.option(
    "--csds",
    envvar=CSDS_ENV,
    help=f"Domain API base URL (or {CSDS_ENV}); default LivePerson's {DEFAULT_CSDS}.",
)
@click.option(
    "--jwt-file",
    type=click.Path(dir_okay=False),
    help=f"File holding an authenticated consumer's JWT (else {JWT_ENV}; neither: a signup at the IDP).",
)
@click.option(
    "--auto",
    type=click.Choice(["accept", "decline"]),
    help="Answer every invitation: publish cobrowseAccepted or cobrowseDeclined after cobrowseOffered.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--visitor-name", default="callops visitor", show_default=True, help="lpTag visitorName.")
@click.option("--ssid", help="Monitoring session id for the payloads (default: generated).")
@click.option("--svid", help="Monitoring visitor id for the payloads (default: generated).")
@click.option(
    "--request-conversation/--no-request-conversation",
    default=True,
    show_default=True,
    help="Start a conversation (cm.ConsumerRequestConversation) before subscribing.",
)
@click.option(
    "--cobrowse-url",
    help="Deliver the lpTag payloads to this CoBrowse stand-in (the emulator's ws://.../cobrowse/...).",
)
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many invitation events.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option(
    "--keepalive",
    type=click.FloatRange(min=1, max=30),
    default=30.0,
    show_default=True,
    help="GetClock period in seconds (at most 30).",
)
def listen(
    *,
    url: str | None,
    account: str,
    csds: str | None,
    jwt_file: str | None,
    auto: str | None,
    as_json: bool,
    visitor_name: str,
    ssid: str | None,
    svid: str | None,
    request_conversation: bool,
    cobrowse_url: str | None,
    count: int | None,
    duration: float | None,
    keepalive: float,
) -> None:
    """Listen for call invitations of ACCOUNT's consumer and print them.

    With no URL the consumer websocket is found through the Domain API (CSDS); with no JWT the
    consumer signs up at the account's IDP (unauthenticated) and renews its identity once if the
    service closes with 4401/4407. URL, when given, is the consumer endpoint
    (wss://.../ws_api/account/A/messaging/consumer?v=3) or a base URL such as ws://127.0.0.1:8080.
    Prints one line per invitation event (invited, accepted, closed with a reason) and per lpTag
    payload the page would publish.
    """
    import asyncio

    from callops.consumer.lptag import AutoAnswer

    jwt = load_secret(file=jwt_file, env=JWT_ENV, what="consumer JWT", required=False)
    csds = _csds_for(url, jwt, csds)

    async def start() -> ConsumerClient:
        from callops.consumer.client import ConsumerClient
        from callops.consumer.identity import prepare_consumer

        prepared = await prepare_consumer(account, url=url, jwt=jwt, csds=csds)
        return ConsumerClient(
            prepared.url, account, prepared.jwt, keepalive_interval=keepalive, identity=prepared.identity
        )

    listener = _Listener(
        start=start,
        visitor=_visitor(visitor_name, ssid, svid),
        auto=AutoAnswer(auto) if auto else None,
        emit=lambda record: click.echo(
            record.model_dump_json(exclude_none=True) if as_json else render_line(record)
        ),
        request_conversation=request_conversation,
        cobrowse_url=cobrowse_url,
        count=count,
    )
    asyncio.run(listener.listen(duration))


def _csds_for(url: str | None, jwt: Secret | None, csds: str | None) -> str | None:
    """The Domain API to ask (checked before any network traffic), when one is needed."""
    from callops.consumer.discovery import csds_base

    if url is not None and jwt is None and csds is None:
        # a URL names a server; its IDP is not guessed (nor LivePerson's CSDS asked behind its back)
        raise UsageError(
            "no consumer JWT given for that URL",
            hint=f"pass --jwt-file or set {JWT_ENV} (authenticated), or --csds URL to sign up at that"
            " Domain API's IDP, or drop the URL to discover everything from LivePerson's CSDS",
        )
    if url is None or jwt is None:
        return csds_base(csds)  # a bad --csds is a usage error before any network traffic
    return csds


def _visitor(name: str, ssid: str | None, svid: str | None) -> Visitor:
    """The page's monitoring identity (generated ids unless given)."""
    from callops.consumer.lptag import Visitor

    return Visitor(
        visitorName=name,
        ssid=ssid or f"callops-ssid-{uuid.uuid4().hex[:12]}",
        svid=svid or f"callops-svid-{uuid.uuid4().hex[:12]}",
    )


@dataclasses.dataclass
class _Listener:
    """One ``consumer listen`` run: the invitation events and lpTag payloads of one consumer."""

    start: Callable[[], Awaitable[ConsumerClient]]
    visitor: Visitor
    auto: AutoAnswer | None
    emit: Callable[[ListenRecord], None]
    request_conversation: bool
    cobrowse_url: str | None
    #: stop after this many invitation events
    count: int | None
    seen: int = 0
    #: CoBrowse channels by serviceId (``--cobrowse-url``)
    channels: dict[str, CoBrowseChannel] = dataclasses.field(default_factory=dict)

    async def listen(self, duration: float | None) -> None:
        """Until ``count`` events were seen or ``duration`` seconds passed (None: no limit)."""
        import asyncio

        try:
            async with asyncio.timeout(duration):
                await self._run()
        except TimeoutError:
            if duration is None:
                raise
        finally:
            for channel in self.channels.values():
                await channel.close()

    async def _run(self) -> None:
        client = await self.start()
        async with client:
            conversation_id = await client.request_conversation() if self.request_conversation else None
            subscription_id = await client.subscribe()
            renewable = client.identity is not None and client.identity.renewable
            self.emit(
                ListenRecord(
                    kind="ready",
                    name="ready",
                    at=time.time(),
                    conversationId=conversation_id,
                    subscriptionId=subscription_id,
                    consumerId=client.consumer_id,
                    identity="unauthenticated" if renewable else "authenticated",
                )
            )
            async for event in client.events():
                await self._on_event(client, event)
                self.seen += 1
                if self.count is not None and self.seen >= self.count:
                    return

    async def _on_event(self, client: ConsumerClient, event: TrackerEvent) -> None:
        from callops.consumer.tracker import CallAccepted, CallClosed, CallInvited

        common: dict[str, Any] = {
            "at": time.time(),
            "conversationId": event.conversationId,
            "dialogId": event.dialogId,
            "serviceId": event.serviceId,
            "mode": event.mode,
            "agentId": event.agentId,
        }
        if isinstance(event, CallInvited):
            self.emit(ListenRecord(kind="event", name="invited", expires=event.expires, **common))
            await self._answer(client, event, common)
        elif isinstance(event, CallAccepted):
            self.emit(ListenRecord(kind="event", name="accepted", **common))
        elif isinstance(event, CallClosed):
            self.emit(ListenRecord(kind="event", name="closed", reason=str(event.reason), **common))

    async def _answer(self, client: ConsumerClient, event: CallInvited, common: dict[str, Any]) -> None:
        """The lpTag payloads the page publishes for an invitation (and ``--auto``'s answer)."""
        from callops.consumer.lptag import answer_invitation

        for pub in answer_invitation(event, self.visitor, self.auto):
            # tell the tracker first: the server's CLOSED for a decline can arrive while
            # the payload is still being delivered, and must close as "declined"
            if pub.eventName == "cobrowseAccepted":
                client.accepted(event.dialogId)
            elif pub.eventName == "cobrowseDeclined":
                client.declined(event.dialogId)
            delivered = None
            if self.cobrowse_url is not None:
                delivered = await _deliver(self.channels, self.cobrowse_url, client, event.serviceId, pub)
            self.emit(
                ListenRecord(
                    kind="lptag",
                    name=str(pub.eventName),
                    channel=pub.channel,
                    data=pub.data,
                    delivered=delivered,
                    **common,
                )
            )


async def _deliver(
    channels: dict[str, CoBrowseChannel],
    cobrowse_url: str,
    client: ConsumerClient,
    service_id: str,
    pub: LpTagPublication,
) -> bool:
    """Publish one lpTag payload on the CoBrowse stand-in (one channel per serviceId)."""
    from callops.errors import CallopsError
    from callops.orchestrator.emulator import CoBrowseChannel

    channel = channels.get(service_id)
    try:
        if channel is None:
            channel = await CoBrowseChannel.connect(
                cobrowse_url, role="consumer", service_id=service_id, jwt=client.jwt.reveal()
            )
            channels[service_id] = channel
        await channel.publish(str(pub.eventName), pub.data)
    except CallopsError as exc:
        click.echo(f"callops: warning: {pub.eventName} not delivered: {exc}", err=True)
        return False
    return True


@consumer.command("js")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file (default: stdout).",
)
def consumer_js(output: str | None) -> None:
    """Write the consumer-side call handler in JavaScript (for pages tagged with lpTag).

    Dependency-free; load it after lpTag and create a CallopsCallHandler.CallHandler (see the comment
    at its top and docs/consumer.md).
    """
    from callops.consumer.web import handler_js

    source = handler_js()
    if output is None:
        click.echo(source.decode(), nl=False)
        return
    try:
        with open(output, "wb") as handle:
            handle.write(source)
    except OSError as exc:
        from callops.errors import UsageError

        raise UsageError(
            f"--output {output}: {exc.strerror or exc}", hint="give a writable file path"
        ) from None
    click.echo(f"wrote {output} ({len(source)} bytes)", err=True)


__all__ = ["JWT_ENV", "ListenRecord", "consumer", "listen", "render_line"]
