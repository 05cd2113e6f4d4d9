"""The invitation tracker: a sans-I/O state machine over ``cqm.ExConversationChangeNotification``.

Fed the bodies of conversation change notifications, the tracker follows every voice/video call
dialog (``channelType`` COBROWSE with ``metaData.mode`` VOICE_CALL or VIDEO_CALL) through
``INVITED -> ACCEPTED -> CLOSED`` and emits typed events: :class:`CallInvited`,
:class:`CallAccepted` and :class:`CallClosed`. It has no asyncio and no clock of its own: every
method that depends on time takes ``now`` (epoch seconds), and :meth:`InvitationTracker.tick`
closes invitations whose ``expires`` has passed even if the server never says so.

Rules (see ``docs/consumer.md``):

- Only a COBROWSE dialog whose ``mode`` is VOICE_CALL/VIDEO_CALL is a call. Co-browsing sessions
  (modes ``shared``, ``view``, ``follow``) are ignored, logged once per dialog.
- Only ``sessionState`` INVITED creates an invitation. An ``ACCEPTED`` for a call the tracker never
  saw invited (a subscription listing after a reconnect) creates the call as accepted.
- Repeated UPSERTs of the same state emit nothing. An update whose ``metaDataLastUpdateTs`` is older
  than the last one applied to that dialog is stale and ignored. States never go backwards, and a
  closed ``dialogId`` never reopens.
- The CLOSED update is partial (``dialogId``, ``dialogType``, ``channelType``, ``metaData.sessionState``):
  it is matched to the call by ``dialogId``.
- An invitation not ACCEPTED by ``expires`` (else ``creationTs`` + 120 s) closes as ``expired``.
- ``DELETE`` of a conversation, or a conversation whose ``stage``/``state`` is CLOSE, closes its calls.

Close reasons, since the server's CLOSED does not say why:

======================================================  ===========
the call was ...                                        reason
======================================================  ===========
ACCEPTED (seen on the wire)                             ``ended``
INVITED, and the consumer declined it (:meth:`declined`)  ``declined``
INVITED, and ``expires`` has passed (1 s tolerance)     ``expired``
INVITED, and the consumer accepted it (:meth:`accepted`)
but ACCEPTED was not seen yet                           ``unknown``
INVITED otherwise (the agent withdrew it)               ``cancelled``
======================================================  ===========
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from enum import StrEnum

from callops.consumer.call_states import CALL_STEPS
from callops.consumer.models import (
    ChangeType,
    ConversationDetails,
    Dialog,
    ExConversationChangeNotification,
    Participant,
    SessionState,
)

log = logging.getLogger("callops.consumer.tracker")

#: An invitation without ``expires`` expires this many seconds after its ``creationTs``.
DEFAULT_INVITE_TTL = 120.0
#: A CLOSED this close to ``expires`` (seconds) counts as the server's expiry.
EXPIRY_TOLERANCE = 1.0
#: How many closed dialog ids are remembered (so that late or replayed updates cannot reopen them).
CLOSED_MEMORY = 10_000

_CALL_MODES = frozenset({"VOICE_CALL", "VIDEO_CALL"})
_AGENT_ROLES = frozenset({"ASSIGNED_AGENT", "AGENT"})
_COBROWSE = "COBROWSE"
_INVITED, _ACCEPTED, _CLOSED = SessionState.INVITED, SessionState.ACCEPTED, SessionState.CLOSED
_CLOSE = "CLOSE"


class _Seen(StrEnum):
    """What the tracker saw happen to a call: a ``sessionState`` on the wire, or a close it infers."""

    INVITED = "INVITED"
    ACCEPTED = "ACCEPTED"
    CLOSED = "CLOSED"
    DIALOG_CLOSE = "dialog state CLOSE"
    EXPIRES_PASSED = "expires passed"
    CONVERSATION_CLOSED = "conversation closed"
    CONVERSATION_DELETED = "conversation deleted"


#: a wire ``sessionState`` -> what the tracker saw
_SEEN_ON_WIRE: dict[str, _Seen] = {str(state): _Seen(state) for state in SessionState}

#: (state, what was seen) -> next state; the state is ``None`` before the call is announced. A
#: pair that is not here changes nothing: a repeated UPSERT of the same state, a state going
#: backwards, anything after CLOSED. The sessionState steps are those of the call table the
#: emulator applies (:data:`~callops.consumer.call_states.CALL_STEPS`).
TRACKER_TRANSITIONS: dict[tuple[SessionState | None, _Seen], SessionState] = {
    # first sight: an invitation, or a call already accepted (a subscription listing after a reconnect)
    (None, _Seen.INVITED): _INVITED,
    (None, _Seen.ACCEPTED): _ACCEPTED,
    **{(old, _Seen(new)): new for old, new in CALL_STEPS},
    # closes the server does not spell as sessionState CLOSED
    **{
        (old, seen): _CLOSED
        for old in (_INVITED, _ACCEPTED)
        for seen in (_Seen.DIALOG_CLOSE, _Seen.CONVERSATION_CLOSED, _Seen.CONVERSATION_DELETED)
    },
    (_INVITED, _Seen.EXPIRES_PASSED): _CLOSED,
}


class CloseReason(StrEnum):
    """Why a call closed, as far as the consumer side can tell."""

    ENDED = "ended"
    CANCELLED = "cancelled"
    DECLINED = "declined"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class _CallEvent:
    """The call an event (or an :class:`ActiveCall`) is about (the fields use the wire's own names;
    snake_case aliases too)."""

    conversationId: str
    dialogId: str
    #: ``"<consumerId>#<uuid>"``, the key that matches consumer and agent on the CoBrowse side
    serviceId: str
    #: ``VOICE_CALL`` or ``VIDEO_CALL``
    mode: str
    #: the inviting agent, from the dialog's or the conversation's participants (None if not found)
    agentId: str | None

    @property
    def conversation_id(self) -> str:
        return self.conversationId

    @property
    def dialog_id(self) -> str:
        return self.dialogId

    @property
    def service_id(self) -> str:
        return self.serviceId

    @property
    def agent_id(self) -> str | None:
        return self.agentId


@dataclass(frozen=True, slots=True)
class CallInvited(_CallEvent):
    """An agent invited the consumer to a voice or video call."""

    #: epoch seconds after which the invitation is void
    expires: float
    #: the dialog's ``creationTs`` (epoch ms), if sent
    creationTs: int | None = None


@dataclass(frozen=True, slots=True)
class CallAccepted(_CallEvent):
    """The call dialog went ACCEPTED (the consumer accepted; the agent side joins)."""


@dataclass(frozen=True, slots=True)
class CallClosed(_CallEvent):
    """The call is over: hung up, cancelled, declined or expired."""

    reason: CloseReason


TrackerEvent = CallInvited | CallAccepted | CallClosed


@dataclass(frozen=True, slots=True)
class ActiveCall(_CallEvent):
    """A snapshot of a call the tracker follows (see :meth:`InvitationTracker.active_calls`)."""

    expires: float
    #: ``INVITED`` or ``ACCEPTED``
    sessionState: str


@dataclass(slots=True, kw_only=True, eq=False)
class _Call:
    """Mutable per-call state on the hot path (slots, compared by identity)."""

    conversationId: str
    dialogId: str
    serviceId: str
    mode: str
    agentId: str | None
    expires: float
    lastUpdateTs: int | None
    #: the dialog's ``creationTs`` (epoch ms), if sent
    creationTs: int | None = None
    #: the consumer's own decision, if told: "accepted" or "declined"
    localHint: str | None = None
    #: None until the call is announced, then INVITED / ACCEPTED / CLOSED
    sessionState: SessionState | None = None

    def ids(self) -> tuple[str, str, str, str, str | None]:
        """The leading fields of every event about this call (those of :class:`_CallEvent`)."""
        return self.conversationId, self.dialogId, self.serviceId, self.mode, self.agentId


class InvitationTracker:
    """Follows voice/video call invitations in conversation change notifications.

    ``consumer_id`` (the JWT ``sub``), when given, helps to tell the agent from the consumer in a
    dialog's plain participant ids; without it the consumer id is taken from the ``serviceId``
    prefix (``"<consumerId>#<uuid>"``).
    """

    def __init__(self, *, consumer_id: str | None = None, default_ttl: float = DEFAULT_INVITE_TTL) -> None:
        self.consumer_id = consumer_id
        self.default_ttl = default_ttl
        self._calls: dict[str, _Call] = {}
        self._by_conversation: dict[str, set[str]] = {}
        self._closed: dict[str, None] = {}  # insertion-ordered set, bounded by CLOSED_MEMORY
        self._ignored: set[str] = set()
        self._deadlines: list[tuple[float, str]] = []  # heap of (expires, dialogId), lazily pruned

    # --- inputs ------------------------------------------------------------------------------

    def receive(self, body: ExConversationChangeNotification, now: float) -> list[TrackerEvent]:
        """Apply one notification body; the events it causes, in order."""
        events: list[TrackerEvent] = []
        for change in body.changes:
            result = change.result
            conversation_id = result.convId
            if change.type is ChangeType.DELETE:
                self._close_conversation(conversation_id, now, _Seen.CONVERSATION_DELETED, events)
                continue
            details = result.conversationDetails
            if details is None:
                continue
            dialogs = details.dialogs
            if dialogs:
                for dialog in dialogs:
                    if dialog.channelType == _COBROWSE or dialog.dialogId in self._calls:
                        self._dialog(conversation_id, details, dialog, now, events)
            if _CLOSE in (details.stage, details.state):
                self._close_conversation(conversation_id, now, _Seen.CONVERSATION_CLOSED, events)
        return events

    def declined(self, dialog_id: str) -> None:
        """The consumer declined this invitation (its ``cobrowseDeclined`` was published)."""
        call = self._calls.get(dialog_id)
        if call is not None:
            call.localHint = "declined"
            log.debug("call %s: consumer declined", dialog_id)

    def accepted(self, dialog_id: str) -> None:
        """The consumer accepted this invitation (its ``cobrowseAccepted`` was published)."""
        call = self._calls.get(dialog_id)
        if call is not None:
            call.localHint = "accepted"
            log.debug("call %s: consumer accepted", dialog_id)

    def tick(self, now: float) -> list[TrackerEvent]:
        """Close invitations whose ``expires`` has passed; the events that causes."""
        events: list[TrackerEvent] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            expires, dialog_id = heapq.heappop(deadlines)
            call = self._calls.get(dialog_id)
            if call is None or call.sessionState != _INVITED or call.expires != expires:
                continue
            self._apply(call, _Seen.EXPIRES_PASSED, now, events)
        return events

    # --- queries -----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has work to do (epoch seconds), or None."""
        deadlines = self._deadlines
        while deadlines:
            expires, dialog_id = deadlines[0]
            call = self._calls.get(dialog_id)
            if call is not None and call.sessionState == _INVITED and call.expires == expires:
                return expires
            heapq.heappop(deadlines)
        return None

    def active_calls(self) -> list[ActiveCall]:
        """The calls currently INVITED or ACCEPTED."""
        return [ActiveCall(*c.ids(), c.expires, c.sessionState or _INVITED) for c in self._calls.values()]

    def call(self, dialog_id: str) -> ActiveCall | None:
        """The active call of ``dialog_id``, if any."""
        for c in self.active_calls():
            if c.dialogId == dialog_id:
                return c
        return None

    # --- the state machine -------------------------------------------------------------------

    def _dialog(
        self,
        conversation_id: str,
        details: ConversationDetails,
        dialog: Dialog,
        now: float,
        events: list[TrackerEvent],
    ) -> None:
        dialog_id = dialog.dialogId
        if dialog_id in self._closed:
            return
        call = self._calls.get(dialog_id)
        if call is None:
            call = self._first_sight(conversation_id, details, dialog, now)
            if call is None:
                return
        elif not self._fresh(call, dialog.metaDataLastUpdateTs):
            return
        state = dialog.metaData.sessionState if dialog.metaData is not None else None
        if state is None:
            if dialog.state == _CLOSE:
                self._apply(call, _Seen.DIALOG_CLOSE, now, events)
            return
        if state == call.sessionState:
            return  # a repeated UPSERT (the table has no such pair): the common case, kept cheap
        seen = _SEEN_ON_WIRE.get(state)
        if seen is None:
            log.info("dialog %s: unknown sessionState %r ignored", dialog_id, state)
            return
        self._apply(call, seen, now, events)

    def _first_sight(
        self, conversation_id: str, details: ConversationDetails, dialog: Dialog, now: float
    ) -> _Call | None:
        """A new :class:`_Call` (not yet announced) for a dialog that is a call, else ``None``."""
        dialog_id = dialog.dialogId
        meta = dialog.metaData
        if dialog_id in self._ignored or meta is None:
            return None
        state = meta.sessionState
        if state not in (_INVITED, _ACCEPTED):
            return None  # a CLOSED for a call we never followed, or a dialog without a call yet
        mode = meta.mode
        if mode not in _CALL_MODES:
            self._ignored.add(dialog_id)
            log.info("dialog %s: COBROWSE mode %r is not a call, ignored", dialog_id, mode)
            return None
        service_id = meta.serviceId
        if not service_id:
            log.warning("dialog %s: %s call without metaData.serviceId, ignored", dialog_id, state)
            return None
        expires = meta.expires
        if expires is None:
            created = dialog.creationTs
            expires = (created / 1000.0 if created is not None else now) + self.default_ttl
        if state == _INVITED and expires <= now:
            log.info("dialog %s: invitation already expired when first seen, ignored", dialog_id)
            self._remember_closed(dialog_id)
            return None
        call = _Call(
            conversationId=conversation_id,
            dialogId=dialog_id,
            serviceId=service_id,
            mode=mode,
            agentId=self._agent_id(details, dialog, service_id),
            expires=expires,
            lastUpdateTs=dialog.metaDataLastUpdateTs,
            creationTs=dialog.creationTs,
        )
        self._calls[dialog_id] = call
        self._by_conversation.setdefault(conversation_id, set()).add(dialog_id)
        return call

    @staticmethod
    def _fresh(call: _Call, ts: int | None) -> bool:
        """Whether an update stamped ``metaDataLastUpdateTs`` ``ts`` is not older than the last one."""
        if ts is None:
            return True
        last = call.lastUpdateTs
        if last is not None and ts < last:
            log.debug("dialog %s: stale update (%d < %d) ignored", call.dialogId, ts, last)
            return False
        call.lastUpdateTs = ts
        return True

    def _apply(self, call: _Call, seen: _Seen, now: float, events: list[TrackerEvent]) -> None:
        """The one place where a call changes state: per :data:`TRACKER_TRANSITIONS`, logged, and
        announced as the event of its new state."""
        old = call.sessionState
        new = TRACKER_TRANSITIONS.get((old, seen))
        if new is None:
            return  # a repeated UPSERT of the same state, or a state going backwards
        reason = self._reason(call, now) if new is SessionState.CLOSED else None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "call %s (conversation %s, %s): %s -> %s (%s%s)",
                call.dialogId,
                call.conversationId,
                call.mode,
                old or "-",
                new,
                seen,
                f": {reason}" if reason else "",
            )
        call.sessionState = new
        if new is SessionState.INVITED:
            heapq.heappush(self._deadlines, (call.expires, call.dialogId))
            events.append(CallInvited(*call.ids(), call.expires, call.creationTs))
        elif new is SessionState.ACCEPTED:
            events.append(CallAccepted(*call.ids()))
        else:
            assert reason is not None
            self._forget(call)
            events.append(CallClosed(*call.ids(), reason))

    def _reason(self, call: _Call, now: float) -> CloseReason:
        if call.sessionState == _ACCEPTED:
            return CloseReason.ENDED
        if call.localHint == "declined":
            return CloseReason.DECLINED
        if now >= call.expires - EXPIRY_TOLERANCE:
            return CloseReason.EXPIRED
        if call.localHint == "accepted":
            return CloseReason.UNKNOWN
        return CloseReason.CANCELLED

    def _close_conversation(
        self, conversation_id: str, now: float, seen: _Seen, events: list[TrackerEvent]
    ) -> None:
        dialog_ids = self._by_conversation.get(conversation_id)
        if not dialog_ids:
            return
        for dialog_id in sorted(dialog_ids):
            call = self._calls.get(dialog_id)
            if call is not None:
                self._apply(call, seen, now, events)

    def _forget(self, call: _Call) -> None:
        """A closed call: no longer followed, and its dialog id never reopens."""
        dialog_id = call.dialogId
        del self._calls[dialog_id]
        siblings = self._by_conversation.get(call.conversationId)
        if siblings is not None:
            siblings.discard(dialog_id)
            if not siblings:
                del self._by_conversation[call.conversationId]
        self._remember_closed(dialog_id)

    def _remember_closed(self, dialog_id: str) -> None:
        closed = self._closed
        closed[dialog_id] = None
        if len(closed) > CLOSED_MEMORY:
            del closed[next(iter(closed))]

    def _agent_id(self, details: ConversationDetails, dialog: Dialog, service_id: str) -> str | None:
        """The inviting agent: an agent role in the dialog, then in the conversation, then the
        dialog's plain participant id that is not the consumer."""
        for lst in (dialog.participantsDetails, dialog.participants, details.participantsDetails,
                    details.participants):  # fmt: skip
            if lst:
                for p in lst:
                    if isinstance(p, Participant) and p.role in _AGENT_ROLES:
                        return p.id
        consumer = self.consumer_id or service_id.partition("#")[0]
        for lst in (dialog.participants, dialog.participantsDetails):
            if lst:
                for p in lst:
                    pid = p if isinstance(p, str) else p.id
                    if pid != consumer and (isinstance(p, str) or p.role != "CONSUMER"):
                        return pid
        return None


__all__ = [
    "CLOSED_MEMORY",
    "DEFAULT_INVITE_TTL",
    "EXPIRY_TOLERANCE",
    "TRACKER_TRANSITIONS",
    "ActiveCall",
    "CallAccepted",
    "CallClosed",
    "CallInvited",
    "CloseReason",
    "InvitationTracker",
    "TrackerEvent",
]
