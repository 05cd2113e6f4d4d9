"""The emulator's conversation model: sans-I/O, no asyncio, no clock of its own.

Accounts hold consumers (by JWT ``sub``) and conversations. A conversation has its MAIN messaging
dialog and any number of COBROWSE call dialogs, at most one of them live. A call goes
INVITED -> ACCEPTED -> CLOSED following :data:`~callops.consumer.call_states.CALL_TRANSITIONS`, the
table in the style of h11's ``_state.py`` that the consumer's invitation tracker follows too;
:meth:`EmulatorModel.apply` is the one method that changes a call's state, and it logs every change.

Every method that changes something takes ``now`` (epoch seconds, float) and returns the frames
to send as :class:`Delivery` objects -- ``(session_id, frame dict)``. Session ids are handed out by
:meth:`EmulatorModel.open_session`; the asyncio adapter maps them to sockets (consumer websockets
and CoBrowse channel sockets share the id space). Frames are plain dicts built once, ready for
``json.dumps``: no pydantic on the per-frame path.

Wire shapes follow ``shared/protocol/messaging-window-api.md``: the COBROWSE dialog is shaped
exactly like the tutorial's example, and the CLOSED update is partial (``dialogId``,
``dialogType``, ``channelType``, ``metaData.sessionState``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Callable

from callops.consumer.call_states import CALL_TRANSITIONS, CallEvent
from callops.consumer.models import (
    ERROR_RESP,
    EX_CONVERSATION_CHANGE_NOTIFICATION,
    GENERIC_SUBSCRIBE_RESPONSE,
    MESSAGING_EVENT_NOTIFICATION,
    PUBLISH_EVENT,
    PUBLISH_EVENT_RESPONSE,
    REQUEST_CONVERSATION,
    REQUEST_CONVERSATION_RESPONSE,
    STRING_RESP,
    SUBSCRIBE_EX_CONVERSATIONS,
    SUBSCRIBE_EX_CONVERSATIONS_RESPONSE,
    SUBSCRIBE_MESSAGING_EVENTS,
    UNSUBSCRIBE_EX_CONVERSATIONS,
    UPDATE_CONVERSATION_FIELD,
    CallMode,
    ConsumerRequestConversation,
    PublishEvent,
    Request,
    SessionState,
    SubscribeExConversations,
    SubscribeMessagingEvents,
    UnsubscribeExConversations,
    UpdateConversationField,
    parse_body,
)
from callops.errors import CallopsError, ProtocolError, RemoteProtocolError
from callops.jsontypes import JsonArray, JsonObject, JsonValue

log = logging.getLogger("callops.emulator")

#: The feature a consumer's ClientProperties must list to be offered voice/video calls.
CO_BROWSE = "CO_BROWSE"
#: Subscriptions one connection may hold (``cqm.SubscribeExConversations`` and, separately,
#: ``ms.SubscribeMessagingEvents``); the next one is answered 429 until one is released.
MAX_SUBSCRIPTIONS = 100
#: Synthetic agent user id; the agent id is ``"<account>.<agent user id>"`` ("le83624296.356285412").
DEFAULT_AGENT_USER_ID = "356285412"


def now_ms(now: float) -> int:
    """Epoch milliseconds for ``now`` (epoch seconds)."""
    return int(now * 1000)


# --- the call state machine: CALL_TRANSITIONS (callops.consumer.call_states), shared with the consumer --


_INVITED, _ACCEPTED, _CLOSED = SessionState.INVITED, SessionState.ACCEPTED, SessionState.CLOSED


class CallStateError(ProtocolError):
    """An event that the call's current state does not allow (accept after expiry, ...)."""

    def __init__(self, call: Call, event: CallEvent) -> None:
        why = f" ({call.closed_reason})" if call.closed_reason else ""
        super().__init__(
            f"call {call.service_id}: cannot apply '{event}' in state {call.state}{why}",
            hint="the invitation is no longer open" if call.state == _CLOSED else None,
        )
        self.state = call.state
        self.event = event


class Refusal(CallopsError):
    """A refusal in the emulator's answer format: an HTTP-style ``code``, a ``title`` and ``details``."""

    #: what the message starts with (the refusing service, if not the model)
    prefix = ""

    def __init__(self, code: int, title: str, details: str) -> None:
        super().__init__(f"{self.prefix}{code} {title}: {details}")
        self.code = code
        self.title = title
        self.details = details


class ModelError(Refusal):
    """A request the model refuses; ``code`` is the HTTP-style answer code (400, 404, 409)."""


# --- frames ---------------------------------------------------------------------------------------


class Delivery:
    """One frame (a JSON-ready dict) for one session; ``data``: the frame already encoded, when
    one notification goes to many subscriptions (the shared part is encoded once)."""

    __slots__ = ("data", "frame", "session_id")

    def __init__(self, session_id: int, frame: JsonObject, data: bytes | None = None) -> None:
        self.session_id = session_id
        self.frame = frame
        self.data = data

    def encoded(self) -> bytes:
        """The frame as compact JSON (UTF-8)."""
        if self.data is None:
            self.data = json.dumps(self.frame, separators=(",", ":")).encode()
        return self.data

    def __repr__(self) -> str:
        return f"Delivery({self.session_id}, {self.frame.get('type')!r})"


def response(req_id: str, code: int, type_: str, body: JsonValue = None) -> JsonObject:
    frame: JsonObject = {"kind": "resp", "reqId": req_id, "code": code, "type": type_}
    if body is not None:
        frame["body"] = body
    return frame


def error_response(req_id: str, code: int, title: str, details: str) -> JsonObject:
    """An answer in the unified error format; ``errorCode`` is ``code * 100 + 1``."""
    return response(
        req_id, code, ERROR_RESP, {"title": title, "details": details, "errorCode": code * 100 + 1}
    )


# --- entities ---------------------------------------------------------------------------------------


class Call:
    """A COBROWSE call dialog of a conversation."""

    __slots__ = (
        "account",
        "agent_id",
        "agent_peer",
        "closed_reason",
        "consumer_id",
        "consumer_peer",
        "conversation_id",
        "created_ms",
        "dialog_id",
        "expires",
        "mode",
        "notification_key",
        "offered",
        "pending",
        "service_id",
        "state",
        "updated_ms",
    )

    def __init__(
        self,
        conversation: Conversation,
        *,
        dialog_id: str,
        service_id: str,
        mode: CallMode,
        expires: float,
        now: float,
    ) -> None:
        """A new INVITED call in ``conversation``, between its consumer and its agent."""
        self.account = conversation.account
        self.conversation_id = conversation.conversation_id
        self.consumer_id = conversation.consumer_id
        self.agent_id = conversation.agent_id
        self.dialog_id = dialog_id
        self.service_id = service_id
        self.mode = mode
        #: epoch seconds
        self.expires = expires
        self.state: SessionState = _INVITED
        #: "accepted" then "joined" while ACCEPTED
        self.notification_key: str | None = None
        self.closed_reason: str | None = None
        self.created_ms = now_ms(now)
        self.updated_ms = self.created_ms
        #: CoBrowse channel: whether cobrowseOffered was published
        self.offered = False
        #: CoBrowse channel session ids of the two peers, if connected and joined
        self.agent_peer: int | None = None
        self.consumer_peer: int | None = None
        #: signals held for a peer that has not joined yet: role -> frames
        self.pending: dict[str, list[JsonObject]] = {"agent": [], "consumer": []}

    @property
    def live(self) -> bool:
        return self.state != _CLOSED

    def dialog(self) -> JsonObject:
        """The COBROWSE dialog as sent to the consumer (partial once CLOSED)."""
        if self.state == _CLOSED:
            return {
                "dialogId": self.dialog_id,
                "dialogType": "OTHER",
                "channelType": "COBROWSE",
                "metaData": {"sessionState": "CLOSED"},
            }
        meta: JsonObject = {
            "serviceId": self.service_id,
            "mode": str(self.mode),
            "expires": self.expires,
            "sessionState": str(self.state),
            "dialogId": self.dialog_id,
        }
        if self.notification_key is not None:
            meta["notificationKey"] = self.notification_key
        return {
            "dialogId": self.dialog_id,
            "participants": [self.consumer_id, self.agent_id],
            "dialogType": "OTHER",
            "channelType": "COBROWSE",
            "metaData": meta,
            "state": "OPEN",
            "creationTs": self.created_ms,
            "metaDataLastUpdateTs": self.updated_ms,
        }

    def view(self) -> JsonObject:
        """The control API's view of the call."""
        return {
            "serviceId": self.service_id,
            "dialogId": self.dialog_id,
            "mode": str(self.mode),
            "sessionState": str(self.state),
            "notificationKey": self.notification_key,
            "expires": self.expires,
            "closedReason": self.closed_reason,
            "agentConnected": self.agent_peer is not None,
            "consumerConnected": self.consumer_peer is not None,
        }


@dataclasses.dataclass(slots=True, eq=False)
class Conversation:
    """A messaging conversation: its MAIN dialog (same id as the conversation) and its calls."""

    account: str
    conversation_id: str
    consumer_id: str
    agent_id: str
    skill_id: str = dataclasses.field(kw_only=True)
    start_ms: int = dataclasses.field(kw_only=True)
    #: "OPEN" or "CLOSE"
    state: str = "OPEN"
    updated_ms: int = dataclasses.field(init=False)
    end_ms: int | None = None
    calls: list[Call] = dataclasses.field(default_factory=list)
    #: last messaging event sequence number
    sequence: int = -1

    def __post_init__(self) -> None:
        self.updated_ms = self.start_ms

    @property
    def live_call(self) -> Call | None:
        for call in reversed(self.calls):
            if call.live:
                return call
        return None

    def main_dialog(self) -> JsonObject:
        dialog: JsonObject = {
            "dialogId": self.conversation_id,
            "participantsDetails": [
                {"id": self.consumer_id, "role": "CONSUMER"},
                {"id": self.agent_id, "role": "ASSIGNED_AGENT"},
            ],
            "dialogType": "MAIN",
            "channelType": "MESSAGING",
            "state": self.state,
            "creationTs": self.start_ms,
            "metaDataLastUpdateTs": self.updated_ms,
        }
        if self.end_ms is not None:
            dialog["endTs"] = self.end_ms
        return dialog

    def result(self) -> JsonObject:
        """``changes[].result`` of an ExConversationChangeNotification."""
        details: JsonObject = {
            "skillId": self.skill_id,
            "brandId": self.account,
            "participants": [
                {"id": self.agent_id, "role": "ASSIGNED_AGENT"},
                {"id": self.consumer_id, "role": "CONSUMER"},
            ],
            "dialogs": [self.main_dialog(), *(call.dialog() for call in self.calls)],
            "state": self.state,
            "stage": self.state,
            "startTs": self.start_ms,
            "metaDataLastUpdateTs": self.updated_ms,
            "ttr": {"ttrType": "NORMAL", "value": 3600},
        }
        if self.end_ms is not None:
            details["endTs"] = self.end_ms
        return {"convId": self.conversation_id, "effectiveTTR": -1, "conversationDetails": details}

    def view(self) -> JsonObject:
        """The control API's view of the conversation and its call state."""
        live = self.live_call
        return {
            "conversationId": self.conversation_id,
            "consumerId": self.consumer_id,
            "agentId": self.agent_id,
            "state": self.state,
            "call": live.view() if live is not None else None,
            "calls": [call.view() for call in self.calls],
        }


class Session:
    """An authenticated consumer websocket."""

    __slots__ = ("account", "consumer_id", "dialog_subscriptions", "features", "session_id", "subscriptions")

    def __init__(self, session_id: int, account: str, consumer_id: str, features: frozenset[str]) -> None:
        self.session_id = session_id
        self.account = account
        self.consumer_id = consumer_id
        self.features = features
        #: subscriptionId -> convState filter (None: every state)
        self.subscriptions: dict[str, frozenset[str] | None] = {}
        #: dialog ids whose messaging events this session receives
        self.dialog_subscriptions: set[str] = set()


class Account:
    __slots__ = (
        "account",
        "co_browse_consumers",
        "conversations",
        "conversations_by_consumer",
        "sessions_by_consumer",
    )

    def __init__(self, account: str) -> None:
        self.account = account
        self.conversations: dict[str, Conversation] = {}
        #: consumer id -> its conversations, oldest first
        self.conversations_by_consumer: dict[str, list[Conversation]] = {}
        #: consumer id -> session ids of its authenticated websockets
        self.sessions_by_consumer: dict[str, set[int]] = {}
        #: consumers whose last InitConnection listed CO_BROWSE
        self.co_browse_consumers: set[str] = set()


# --- the model --------------------------------------------------------------------------------------


class EmulatorModel:
    """Accounts, consumers, conversations and calls. Time is passed in; frames are returned."""

    def __init__(
        self,
        *,
        invite_expiry: float = 120.0,
        agent_user_id: str = DEFAULT_AGENT_USER_ID,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.invite_expiry = invite_expiry
        self.agent_user_id = agent_user_id
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self.accounts: dict[str, Account] = {}
        self.sessions: dict[int, Session] = {}
        self.calls_by_service_id: dict[str, Call] = {}
        self._next_session_id = 0

    # sessions -----------------------------------------------------------------------------------

    def open_session(self) -> int:
        """A fresh session id for a socket (consumer websocket or CoBrowse channel)."""
        self._next_session_id += 1
        return self._next_session_id

    def account(self, account: str) -> Account:
        acc = self.accounts.get(account)
        if acc is None:
            acc = self.accounts[account] = Account(account)
        return acc

    def agent_id(self, account: str) -> str:
        return f"{account}.{self.agent_user_id}"

    def authenticate(self, session_id: int, account: str, consumer_id: str, features: frozenset[str]) -> None:
        """Session ``session_id`` is consumer ``consumer_id`` of ``account`` (after InitConnection)."""
        old = self.sessions.get(session_id)
        acc = self.account(account)
        if old is not None and (old.account, old.consumer_id) == (account, consumer_id):
            old.features = features  # a token refresh keeps the subscriptions
        else:
            if old is not None:
                self.close_session(session_id)
            self.sessions[session_id] = Session(session_id, account, consumer_id, features)
            acc.sessions_by_consumer.setdefault(consumer_id, set()).add(session_id)
        if CO_BROWSE in features:
            acc.co_browse_consumers.add(consumer_id)
        else:
            acc.co_browse_consumers.discard(consumer_id)
        log.debug("session %d: consumer %s of account %s", session_id, consumer_id, account)

    def close_session(self, session_id: int) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        sessions = self.accounts[session.account].sessions_by_consumer.get(session.consumer_id)
        if sessions is not None:
            sessions.discard(session_id)

    # consumer requests ----------------------------------------------------------------------------

    def handle_request(self, session_id: int, request: Request, now: float) -> list[Delivery]:
        """Answer a request of an authenticated session; the answer comes first in the list."""
        session = self.sessions[session_id]
        handler = self._handlers.get(request.type)
        if handler is None:
            return [
                Delivery(
                    session_id,
                    error_response(
                        request.id,
                        400,
                        "Unknown request type",
                        f"request type {request.type!r} is not supported by the emulator",
                    ),
                )
            ]
        try:
            return handler(self, session, request, now)
        except RemoteProtocolError as exc:
            return [Delivery(session_id, error_response(request.id, 400, "Bad request", exc.message))]
        except ModelError as exc:
            return [Delivery(session_id, error_response(request.id, exc.code, exc.title, exc.details))]

    def _request_conversation(self, session: Session, request: Request, now: float) -> list[Delivery]:
        body = parse_body(ConsumerRequestConversation, request.body, what=REQUEST_CONVERSATION)
        acc = self.accounts[session.account]
        for conv in acc.conversations_by_consumer.get(session.consumer_id, ()):
            if conv.state == "OPEN":
                raise ModelError(
                    400,
                    "Conversation already open",
                    f"consumer {session.consumer_id} already has open conversation {conv.conversation_id}",
                )
        conv = Conversation(
            session.account,
            self._new_id(),
            session.consumer_id,
            self.agent_id(session.account),
            skill_id=body.skillId or "-1",
            start_ms=now_ms(now),
        )
        acc.conversations[conv.conversation_id] = conv
        acc.conversations_by_consumer.setdefault(conv.consumer_id, []).append(conv)
        log.info(
            "account %s: conversation %s opened by %s", conv.account, conv.conversation_id, conv.consumer_id
        )
        answer = response(
            request.id, 200, REQUEST_CONVERSATION_RESPONSE, {"conversationId": conv.conversation_id}
        )
        return [Delivery(session.session_id, answer), *self._notify(conv)]

    def _subscribe(self, session: Session, request: Request, now: float) -> list[Delivery]:
        body = parse_body(SubscribeExConversations, request.body, what=SUBSCRIBE_EX_CONVERSATIONS)
        if len(session.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise ModelError(
                429,
                "Too many subscriptions",
                f"a connection may hold {MAX_SUBSCRIPTIONS} subscriptions; release one with "
                f"{UNSUBSCRIBE_EX_CONVERSATIONS} first",
            )
        states = body.convState or body.stage
        conv_filter = frozenset(s.replace("CLOSED", "CLOSE") for s in states) if states else None
        subscription_id = self._new_id()
        session.subscriptions[subscription_id] = conv_filter
        answer = response(
            request.id, 200, SUBSCRIBE_EX_CONVERSATIONS_RESPONSE, {"subscriptionId": subscription_id}
        )
        acc = self.accounts[session.account]
        changes: JsonArray = [
            {"type": "UPSERT", "result": conv.result()}
            for conv in acc.conversations_by_consumer.get(session.consumer_id, ())
            if conv_filter is None or conv.state in conv_filter
        ]
        listing: JsonObject = {
            "kind": "notification",
            "type": EX_CONVERSATION_CHANGE_NOTIFICATION,
            "body": {"subscriptionId": subscription_id, "changes": changes},
        }
        return [Delivery(session.session_id, answer), Delivery(session.session_id, listing)]

    def _unsubscribe(self, session: Session, request: Request, now: float) -> list[Delivery]:
        body = parse_body(UnsubscribeExConversations, request.body, what=UNSUBSCRIBE_EX_CONVERSATIONS)
        if session.subscriptions.pop(body.subscriptionId, False) is False:
            raise ModelError(404, "Unknown subscription", f"no subscription {body.subscriptionId!r}")
        return [Delivery(session.session_id, response(request.id, 200, STRING_RESP))]

    def _conversation_of(self, session: Session, conversation_id: str | None, dialog_id: str) -> Conversation:
        acc = self.accounts[session.account]
        conv = acc.conversations.get(conversation_id or dialog_id)
        if conv is None or conv.consumer_id != session.consumer_id:
            raise ModelError(404, "Unknown conversation", f"no conversation {conversation_id or dialog_id!r}")
        return conv

    def _subscribe_messaging(self, session: Session, request: Request, now: float) -> list[Delivery]:
        body = parse_body(SubscribeMessagingEvents, request.body, what=SUBSCRIBE_MESSAGING_EVENTS)
        self._conversation_of(session, body.conversationId, body.dialogId)
        if (
            body.dialogId not in session.dialog_subscriptions
            and len(session.dialog_subscriptions) >= MAX_SUBSCRIPTIONS
        ):
            raise ModelError(
                429,
                "Too many subscriptions",
                f"a connection may subscribe to the messaging events of {MAX_SUBSCRIPTIONS} dialogs",
            )
        session.dialog_subscriptions.add(body.dialogId)
        return [Delivery(session.session_id, response(request.id, 200, GENERIC_SUBSCRIBE_RESPONSE))]

    def _publish_event(self, session: Session, request: Request, now: float) -> list[Delivery]:
        body = parse_body(PublishEvent, request.body, what=PUBLISH_EVENT)
        conv = self._conversation_of(session, body.conversationId, body.dialogId)
        if conv.state != "OPEN":
            raise ModelError(400, "Conversation closed", f"conversation {conv.conversation_id} is closed")
        conv.sequence += 1
        out = [
            Delivery(
                session.session_id,
                response(request.id, 200, PUBLISH_EVENT_RESPONSE, {"sequence": conv.sequence}),
            )
        ]
        change: JsonObject = {
            "sequence": conv.sequence,
            "originatorId": session.consumer_id,
            "originatorMetadata": {"id": session.consumer_id, "role": "CONSUMER"},
            "serverTimestamp": now_ms(now),
            "event": body.event,
            "conversationId": conv.conversation_id,
            "dialogId": body.dialogId,
        }
        frame: JsonObject = {
            "kind": "notification",
            "type": MESSAGING_EVENT_NOTIFICATION,
            "body": {"changes": [change]},
        }
        for sid in self.accounts[session.account].sessions_by_consumer.get(session.consumer_id, ()):
            if body.dialogId in self.sessions[sid].dialog_subscriptions:
                out.append(Delivery(sid, frame))
        return out

    def _update_conversation(self, session: Session, request: Request, now: float) -> list[Delivery]:
        body = parse_body(UpdateConversationField, request.body, what=UPDATE_CONVERSATION_FIELD)
        conv = self._conversation_of(session, body.conversationId, body.conversationId)
        out: list[Delivery] = [Delivery(session.session_id, response(request.id, 200, STRING_RESP))]
        for field in body.conversationField:
            if field.field == "ConversationStateField" and field.conversationState == "CLOSE":
                out += self.close_conversation(conv, now)
            elif field.field == "DialogChange" and field.dialog is not None:
                dialog_id = field.dialog.get("dialogId")
                call = next((c for c in conv.calls if c.dialog_id == dialog_id), None)
                if call is None:
                    raise ModelError(
                        404, "Unknown dialog", f"no call dialog {dialog_id!r} in {conv.conversation_id}"
                    )
                if field.dialog.get("state") == "CLOSE" and call.live:
                    event = (
                        CallEvent.CONSUMER_DECLINE if call.state == _INVITED else CallEvent.CONSUMER_HANG_UP
                    )
                    out += self.apply(call, event, now, reason="closed by consumer (DialogChange)")
            else:
                raise ModelError(
                    400,
                    "Unsupported field",
                    f"conversationField {field.field!r} is not supported by the emulator",
                )
        return out

    _handlers: dict[str, Callable[[EmulatorModel, Session, Request, float], list[Delivery]]] = {
        REQUEST_CONVERSATION: _request_conversation,
        SUBSCRIBE_EX_CONVERSATIONS: _subscribe,
        UNSUBSCRIBE_EX_CONVERSATIONS: _unsubscribe,
        SUBSCRIBE_MESSAGING_EVENTS: _subscribe_messaging,
        PUBLISH_EVENT: _publish_event,
        UPDATE_CONVERSATION_FIELD: _update_conversation,
    }

    # notifications ------------------------------------------------------------------------------

    def _notify(self, conv: Conversation, result: JsonObject | None = None) -> list[Delivery]:
        """An UPSERT of ``conv`` to every subscription of its consumer."""
        acc = self.accounts[conv.account]
        result = result if result is not None else conv.result()
        changes: JsonArray = [{"type": "UPSERT", "result": result}]
        # the changes are encoded once for every subscription: only the subscriptionId differs
        tail = b',"changes":' + json.dumps(changes, separators=(",", ":")).encode() + b"}}"
        head = b'{"kind":"notification","type":"' + EX_CONVERSATION_CHANGE_NOTIFICATION.encode()
        head += b'","body":{"subscriptionId":'
        out = []
        for sid in acc.sessions_by_consumer.get(conv.consumer_id, ()):
            for subscription_id in self.sessions[sid].subscriptions:
                body: JsonObject = {"subscriptionId": subscription_id, "changes": changes}
                frame: JsonObject = {
                    "kind": "notification",
                    "type": EX_CONVERSATION_CHANGE_NOTIFICATION,
                    "body": body,
                }
                out.append(Delivery(sid, frame, head + json.dumps(subscription_id).encode() + tail))
        return out

    def _notify_call(self, conv: Conversation, call: Call) -> list[Delivery]:
        if call.state != _CLOSED:
            return self._notify(conv)
        # The documented CLOSED update is partial: only the closed dialog, as the tutorial shows it.
        result: JsonObject = {
            "convId": conv.conversation_id,
            "conversationDetails": {"dialogs": [call.dialog()]},
        }
        return self._notify(conv, result)

    # agent control --------------------------------------------------------------------------------

    def conversation(self, account: str, conversation_id: str) -> Conversation:
        acc = self.accounts.get(account)
        conv = acc.conversations.get(conversation_id) if acc is not None else None
        if conv is None:
            raise ModelError(
                404, "Unknown conversation", f"account {account} has no conversation {conversation_id!r}"
            )
        return conv

    def conversations(self, account: str) -> list[Conversation]:
        acc = self.accounts.get(account)
        return list(acc.conversations.values()) if acc is not None else []

    def invite(
        self, account: str, conversation_id: str, mode: CallMode, now: float
    ) -> tuple[Call, list[Delivery]]:
        """The agent invites the consumer of the conversation to a call."""
        conv = self.conversation(account, conversation_id)
        if conv.state != "OPEN":
            raise ModelError(409, "Conversation closed", f"conversation {conversation_id} is closed")
        live = conv.live_call
        if live is not None:
            raise ModelError(
                409,
                "Call in progress",
                f"conversation {conversation_id} has call {live.service_id} ({live.state})",
            )
        if conv.consumer_id not in self.accounts[account].co_browse_consumers:
            raise ModelError(
                409,
                "Consumer cannot take calls",
                f"consumer {conv.consumer_id} did not list {CO_BROWSE} in its ClientProperties features",
            )
        dialog_id = self._new_id()
        call = Call(
            conv,
            dialog_id=dialog_id,
            service_id=f"{conv.consumer_id}#{self._new_id()}",
            mode=mode,
            expires=now + self.invite_expiry,
            now=now,
        )
        conv.calls.append(call)
        conv.updated_ms = call.created_ms
        self.calls_by_service_id[call.service_id] = call
        log.info("call %s: INVITED (%s, expires in %.0f s)", call.service_id, mode, self.invite_expiry)
        return call, self._notify_call(conv, call)

    def end_call(self, account: str, conversation_id: str, now: float) -> tuple[Call, list[Delivery]]:
        """The agent cancels the invitation or hangs up."""
        conv = self.conversation(account, conversation_id)
        call = conv.live_call
        if call is None:
            raise ModelError(
                409, "No call", f"conversation {conversation_id} has no invitation or call to end"
            )
        event = CallEvent.AGENT_CANCEL if call.state == _INVITED else CallEvent.AGENT_HANG_UP
        return call, self.apply(call, event, now, reason=str(event))

    def close_conversation(self, conv: Conversation, now: float) -> list[Delivery]:
        out: list[Delivery] = []
        call = conv.live_call
        if call is not None:
            out += self.apply(call, CallEvent.CONVERSATION_CLOSED, now, reason="conversation closed")
        if conv.state == "OPEN":
            conv.state = "CLOSE"
            conv.end_ms = conv.updated_ms = now_ms(now)
            log.info("account %s: conversation %s closed", conv.account, conv.conversation_id)
            out += self._notify(conv)
        return out

    # expiry ----------------------------------------------------------------------------------------

    def next_expiry(self) -> float | None:
        """When the next open invitation expires (epoch seconds), if any."""
        due = [c.expires for c in self.calls_by_service_id.values() if c.state == _INVITED]
        return min(due) if due else None

    def expire_due(self, now: float) -> list[Delivery]:
        """Close every invitation not accepted by ``now``."""
        out: list[Delivery] = []
        for call in list(self.calls_by_service_id.values()):
            if call.state == _INVITED and call.expires <= now:
                out += self.apply(call, CallEvent.EXPIRE, now, reason="invitation expired")
        return out

    # the one place where a call changes state -------------------------------------------------

    def apply(self, call: Call, event: CallEvent, now: float, *, reason: str | None = None) -> list[Delivery]:
        """Apply ``event`` to ``call`` per :data:`CALL_TRANSITIONS`, log it, return the frames to send:
        the ExConversationChangeNotification to the consumer's subscriptions and a ``state`` frame to
        the CoBrowse channel peers. Raises :class:`CallStateError` for a pair not in the table."""
        new = CALL_TRANSITIONS.get((call.state, event))
        if new is None:
            raise CallStateError(call, event)
        old_key = call.notification_key
        if event == CallEvent.CONSUMER_ACCEPT:
            call.notification_key = "accepted"
        elif event == CallEvent.CONSUMER_JOIN:
            call.notification_key = "joined"
        if new == call.state and old_key == call.notification_key:
            return []  # re-join after a reload: nothing new to tell
        old = call.state
        call.state = new
        call.updated_ms = now_ms(now)
        if new == _CLOSED:
            call.closed_reason = reason or str(event)
            call.notification_key = None
            call.pending = {"agent": [], "consumer": []}
        log.info(
            "call %s: %s -> %s on '%s'%s",
            call.service_id,
            old,
            new,
            event,
            f" (notificationKey {call.notification_key})" if call.notification_key else "",
        )
        conv = self.accounts[call.account].conversations[call.conversation_id]
        conv.updated_ms = call.updated_ms
        out = self._notify_call(conv, call)
        state_frame: JsonObject = {
            "type": "state",
            "serviceId": call.service_id,
            "sessionState": str(call.state),
            "notificationKey": call.notification_key,
            "event": str(event),
        }
        if new == _CLOSED:
            state_frame["reason"] = call.closed_reason
        for peer in (call.agent_peer, call.consumer_peer):
            if peer is not None:
                out.append(Delivery(peer, state_frame))
        return out


__all__ = [
    "CALL_TRANSITIONS",
    "CO_BROWSE",
    "DEFAULT_AGENT_USER_ID",
    "MAX_SUBSCRIPTIONS",
    "Account",
    "Call",
    "CallEvent",
    "CallStateError",
    "Conversation",
    "Delivery",
    "EmulatorModel",
    "ModelError",
    "Refusal",
    "Session",
    "error_response",
    "now_ms",
    "response",
]
