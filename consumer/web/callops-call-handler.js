/*
 * callops-call-handler.js -- voice and video call invitations on a page tagged with lpTag.
 *
 * What a brand's web developer ships to let visitors take LivePerson voice/video calls, following
 * LivePerson's tutorial "Voice & Video Calls (consumer side, Messaging Window API)" step by step:
 *
 *   1. InitConnection with the CO_BROWSE feature and the visitor's JWT;
 *   2. a conversation, and the conversation metadata subscription (the invitation comes in it);
 *   3. the COBROWSE dialog in sessionState INVITED is an invitation (ACCEPTED and CLOSED follow);
 *      lpTag.events.publish("lpCoBrowse", "cobrowseOffered", {...}) at once;
 *   4. cobrowseAccepted or cobrowseDeclined, with the mandatory fields;
 *   5. the <div class="lp_cobrowse_callscreen_container"> the call app renders into, created at
 *      the latest on accept;
 *   then: sessionResume (after a reload) -> create the container, publish sliderOpened;
 *         sessionError {msg, id} with the four ids; CLOSED for hang-up, cancel and expiry.
 *
 * No dependencies, no build step: load it with a <script> tag after lpTag. Usage:
 *
 *   var handler = new CallopsCallHandler.CallHandler({
 *     websocketUrl: "wss://DOMAIN/ws_api/account/ACCOUNT/messaging/consumer?v=3",
 *     jwt: visitorJwt,
 *     visitor: { visitorName: "Jane", ssid: lpTag.taglets.lp_monitoringSDK.getSid(),
 *                svid: lpTag.taglets.lp_monitoringSDK.getVid() },
 *     decide: function (invitation) { return askTheVisitor(invitation.mode); }  // "accept" | "decline"
 *   });
 *   handler.start();
 *
 * The pure parts (findCallDialogs, InvitationTracker, validateCallPayload, buildCallPayload) follow
 * the same rules as callops' Python consumer (callops/consumer/tracker.py and lptag.py); callops
 * tests them in a real browser.
 */
(function (root) {
  "use strict";

  // --- Constants from the tutorial ------------------------------------------------------------

  var LPTAG_CHANNEL = "lpCoBrowse"; // the lpTag events channel of the call application
  var LPTAG_APP_NAME = "cobrowse"; // appName of sessionResume / sessionError
  var CONTAINER_CLASS = "lp_cobrowse_callscreen_container";
  var CALL_MODES = ["VOICE_CALL", "VIDEO_CALL"]; // co-browsing modes (shared, view, follow) are not calls
  var SESSION_ERROR_IDS = ["UNABLE_TO_CONNECT", "BROWSER_NOT_SUPPORTED", "NO_CAMERA_ACCESS", "AGENT_DISCONNECTED"];
  var DEFAULT_INVITE_TTL = 120; // seconds: an invitation without "expires" ends 2 minutes after creationTs
  var EXPIRY_TOLERANCE = 1; // seconds: a CLOSED this close to "expires" counts as the expiry
  var CLOSED_MEMORY = 10000; // closed dialog ids remembered, so that late updates cannot reopen them
  var AGENT_ROLES = ["ASSIGNED_AGENT", "AGENT"];
  var KEEPALIVE_MS = 30000; // GetClock at least every 60 s keeps the websocket open

  // The payload fields of cobrowseOffered / cobrowseAccepted / cobrowseDeclined, in this order.
  var CALL_PAYLOAD_FIELDS = [
    { name: "serviceId", mandatory: true },
    { name: "agentId", mandatory: true },
    { name: "visitorName", mandatory: true },
    { name: "mode", mandatory: true, oneOf: CALL_MODES },
    { name: "ssid", mandatory: true },
    { name: "svid", mandatory: true },
    { name: "scid", mandatory: false },
    { name: "cid", mandatory: false },
    { name: "eid", mandatory: false }
  ];
  var EVENT_FIELDS = {
    cobrowseOffered: CALL_PAYLOAD_FIELDS,
    cobrowseAccepted: CALL_PAYLOAD_FIELDS,
    cobrowseDeclined: CALL_PAYLOAD_FIELDS,
    sliderOpened: [],
    sessionResume: [],
    sessionError: [{ name: "msg", mandatory: true, emptyOk: true }, { name: "id", mandatory: true, oneOf: SESSION_ERROR_IDS }]
  };

  function quoteList(values) {
    var quoted = values.map(function (v) { return "'" + v + "'"; });
    return quoted.length > 1 ? quoted.slice(0, -1).join(", ") + " or " + quoted[quoted.length - 1] : quoted[0];
  }

  // --- Payloads: validation and building (pure) -----------------------------------------------

  /**
   * Every problem of one lpTag event payload, as [{field, message}] (empty: valid).
   * lpTag itself only logs "Error executing cobrowseOffered eventId: ..."; this names each field.
   */
  function validateCallPayload(eventName, payload) {
    var fields = EVENT_FIELDS[eventName];
    if (!fields) {
      return [{ field: "event", message: "unknown event '" + eventName + "'; known: " + Object.keys(EVENT_FIELDS).sort().join(", ") }];
    }
    if (payload === undefined || payload === null) payload = {};
    if (typeof payload !== "object" || Array.isArray(payload)) {
      return [{ field: "(payload)", message: "must be an object, got " + (Array.isArray(payload) ? "list" : typeof payload) }];
    }
    var problems = [];
    fields.forEach(function (f) {
      var value = payload[f.name];
      if (value === undefined || value === null) {
        if (f.mandatory) problems.push({ field: f.name, message: "is mandatory and missing" });
      } else if (f.oneOf) {
        if (f.oneOf.indexOf(value) < 0) {
          problems.push({ field: f.name, message: "must be one of " + quoteList(f.oneOf) + ", got " + JSON.stringify(value).replace(/"/g, "'") });
        }
      } else if (typeof value !== "string") {
        problems.push({ field: f.name, message: "must be a string" });
      } else if (value === "" && !f.emptyOk) {
        problems.push({ field: f.name, message: "must be a non-empty string" });
      }
    });
    return problems;
  }

  /** Thrown by buildCallPayload; .problems lists every bad field. */
  function PayloadError(eventName, problems) {
    this.name = "PayloadError";
    this.eventName = eventName;
    this.problems = problems;
    this.message = eventName + ": " + problems.map(function (p) { return p.field + " " + p.message; }).join("; ");
  }
  PayloadError.prototype = Object.create(Error.prototype);

  /**
   * The payload of cobrowseOffered / cobrowseAccepted / cobrowseDeclined for an invitation:
   * serviceId, agentId and mode from the dialog; visitorName, ssid, svid (and the optional scid,
   * cid, eid) from the page. Throws PayloadError naming every bad field.
   */
  function buildCallPayload(eventName, call, visitor) {
    var payload = {
      serviceId: call.serviceId,
      agentId: call.agentId,
      visitorName: visitor.visitorName,
      mode: call.mode,
      ssid: visitor.ssid,
      svid: visitor.svid
    };
    ["scid", "cid", "eid"].forEach(function (key) {
      if (visitor[key] !== undefined && visitor[key] !== null) payload[key] = visitor[key];
    });
    if (payload.agentId === undefined || payload.agentId === null) delete payload.agentId;
    var problems = validateCallPayload(eventName, payload);
    if (problems.length) throw new PayloadError(eventName, problems);
    return payload;
  }

  // --- The invitation tracker (pure: no timers, time is passed in) ------------------------------

  /**
   * The COBROWSE dialogs of one cqm.ExConversationChangeNotification body, as
   * [{conversationId, details, dialog}] (DELETE changes as {conversationId, deleted: true}).
   */
  function findCallDialogs(body) {
    var out = [];
    ((body && body.changes) || []).forEach(function (change) {
      var result = change.result || {};
      if (change.type === "DELETE") {
        out.push({ conversationId: result.convId, deleted: true });
        return;
      }
      var details = result.conversationDetails;
      if (!details) return;
      (details.dialogs || []).forEach(function (dialog) {
        if (dialog.channelType === "COBROWSE") out.push({ conversationId: result.convId, details: details, dialog: dialog });
      });
    });
    return out;
  }

  /**
   * Follows call dialogs through INVITED -> ACCEPTED -> CLOSED; receive() returns events
   * {type: "invited" | "accepted" | "closed", call, reason?}. The same rules as callops' Python
   * InvitationTracker: only INVITED creates an invitation (ACCEPTED first seen creates an accepted
   * call); repeated states emit nothing; stale updates (older metaDataLastUpdateTs) are ignored;
   * states never go backwards; a closed dialogId never reopens; an invitation not accepted by
   * "expires" closes as expired (tick). Close reasons: ended, declined, expired, unknown, cancelled.
   */
  function InvitationTracker(options) {
    options = options || {};
    this.consumerId = options.consumerId || null;
    this.defaultTtl = options.defaultTtl || DEFAULT_INVITE_TTL;
    this.calls = {}; // dialogId -> call
    this.closed = {}; // dialogId -> true (bounded by CLOSED_MEMORY)
    this.closedOrder = [];
    this.ignored = {}; // co-browsing dialogs, logged once
  }

  InvitationTracker.prototype.receive = function (body, now) {
    var events = [];
    var self = this;
    ((body && body.changes) || []).forEach(function (change) {
      var result = change.result || {};
      var conversationId = result.convId;
      if (change.type === "DELETE") {
        self._closeConversation(conversationId, now, events);
        return;
      }
      var details = result.conversationDetails;
      if (!details) return;
      (details.dialogs || []).forEach(function (dialog) {
        if (dialog.channelType === "COBROWSE" || self.calls[dialog.dialogId]) {
          self._dialog(conversationId, details, dialog, now, events);
        }
      });
      if (details.stage === "CLOSE" || details.state === "CLOSE") self._closeConversation(conversationId, now, events);
    });
    return events;
  };

  /** The consumer accepted (its cobrowseAccepted was published). */
  InvitationTracker.prototype.accepted = function (dialogId) {
    if (this.calls[dialogId]) this.calls[dialogId].localHint = "accepted";
  };

  /** The consumer declined (its cobrowseDeclined was published). */
  InvitationTracker.prototype.declined = function (dialogId) {
    if (this.calls[dialogId]) this.calls[dialogId].localHint = "declined";
  };

  /** Close invitations whose "expires" has passed. */
  InvitationTracker.prototype.tick = function (now) {
    var events = [];
    var self = this;
    Object.keys(this.calls).forEach(function (id) {
      var call = self.calls[id];
      if (call.sessionState === "INVITED" && call.expires <= now) {
        self._close(call, call.localHint === "declined" ? "declined" : "expired", events);
      }
    });
    return events;
  };

  /** When tick() next has work (epoch seconds), or null. */
  InvitationTracker.prototype.nextDeadline = function () {
    var next = null;
    var calls = this.calls;
    Object.keys(calls).forEach(function (id) {
      if (calls[id].sessionState === "INVITED" && (next === null || calls[id].expires < next)) next = calls[id].expires;
    });
    return next;
  };

  InvitationTracker.prototype._dialog = function (conversationId, details, dialog, now, events) {
    var id = dialog.dialogId;
    if (this.closed[id]) return; // a closed dialog never reopens
    var meta = dialog.metaData || null;
    var state = meta ? meta.sessionState : undefined;
    var call = this.calls[id];
    if (!call) {
      if (this.ignored[id]) return;
      if (!meta || (state !== "INVITED" && state !== "ACCEPTED")) return; // CLOSED of a call never followed
      if (CALL_MODES.indexOf(meta.mode) < 0) {
        this.ignored[id] = true;
        log("info", "dialog " + id + ": COBROWSE mode " + meta.mode + " is not a call, ignored");
        return;
      }
      if (!meta.serviceId) {
        log("warn", "dialog " + id + ": " + state + " call without metaData.serviceId, ignored");
        return;
      }
      var expires = meta.expires;
      if (expires === undefined || expires === null) {
        expires = (dialog.creationTs !== undefined && dialog.creationTs !== null ? dialog.creationTs / 1000 : now) + this.defaultTtl;
      }
      if (state === "INVITED" && expires <= now) {
        log("info", "dialog " + id + ": invitation already expired when first seen, ignored");
        this._rememberClosed(id);
        return;
      }
      call = {
        conversationId: conversationId,
        dialogId: id,
        serviceId: meta.serviceId,
        mode: meta.mode,
        agentId: this._agentId(details, dialog, meta.serviceId),
        expires: expires,
        creationTs: dialog.creationTs,
        lastUpdateTs: dialog.metaDataLastUpdateTs,
        localHint: null,
        sessionState: null
      };
      this.calls[id] = call;
      this._setState(call, state);
      events.push({ type: state === "INVITED" ? "invited" : "accepted", call: snapshot(call) });
      return;
    }
    var ts = dialog.metaDataLastUpdateTs;
    if (ts !== undefined && ts !== null) {
      if (call.lastUpdateTs !== undefined && call.lastUpdateTs !== null && ts < call.lastUpdateTs) return; // stale
      call.lastUpdateTs = ts;
    }
    if (state === undefined || state === null) {
      if (dialog.state === "CLOSE") this._close(call, this._reason(call, now), events);
      return;
    }
    if (state === call.sessionState) return; // a repeated UPSERT of the same state
    if (state === "ACCEPTED") {
      if (call.sessionState === "INVITED") {
        this._setState(call, "ACCEPTED");
        events.push({ type: "accepted", call: snapshot(call) });
      }
    } else if (state === "CLOSED") {
      this._close(call, this._reason(call, now), events);
    } else if (state !== "INVITED") {
      log("info", "dialog " + id + ": unknown sessionState " + state + " ignored");
    } // INVITED after ACCEPTED: states never go backwards
  };

  InvitationTracker.prototype._reason = function (call, now) {
    if (call.sessionState === "ACCEPTED") return "ended";
    if (call.localHint === "declined") return "declined";
    if (now >= call.expires - EXPIRY_TOLERANCE) return "expired";
    if (call.localHint === "accepted") return "unknown";
    return "cancelled";
  };

  InvitationTracker.prototype._closeConversation = function (conversationId, now, events) {
    var self = this;
    Object.keys(this.calls).sort().forEach(function (id) {
      var call = self.calls[id];
      if (call && call.conversationId === conversationId) self._close(call, self._reason(call, now), events);
    });
  };

  InvitationTracker.prototype._close = function (call, reason, events) {
    this._setState(call, "CLOSED");
    delete this.calls[call.dialogId];
    this._rememberClosed(call.dialogId);
    var closed = snapshot(call);
    closed.reason = reason;
    events.push({ type: "closed", call: closed, reason: reason });
  };

  InvitationTracker.prototype._rememberClosed = function (id) {
    this.closed[id] = true;
    this.closedOrder.push(id);
    if (this.closedOrder.length > CLOSED_MEMORY) delete this.closed[this.closedOrder.shift()];
  };

  /** The one place where a call changes state. */
  InvitationTracker.prototype._setState = function (call, state) {
    log("debug", "call " + call.dialogId + ": " + (call.sessionState || "-") + " -> " + state);
    call.sessionState = state;
  };

  /** The inviting agent: an agent role in the dialog, then in the conversation, then the dialog's
   *  plain participant id that is not the consumer. */
  InvitationTracker.prototype._agentId = function (details, dialog, serviceId) {
    var lists = [dialog.participantsDetails, dialog.participants, details.participantsDetails, details.participants];
    for (var i = 0; i < lists.length; i++) {
      var list = lists[i] || [];
      for (var j = 0; j < list.length; j++) {
        var p = list[j];
        if (p && typeof p === "object" && AGENT_ROLES.indexOf(p.role) >= 0) return p.id;
      }
    }
    var consumer = this.consumerId || serviceId.split("#")[0];
    var plain = [dialog.participants, dialog.participantsDetails];
    for (var k = 0; k < plain.length; k++) {
      var entries = plain[k] || [];
      for (var m = 0; m < entries.length; m++) {
        var q = entries[m];
        var pid = typeof q === "string" ? q : q.id;
        if (pid !== consumer && (typeof q === "string" || q.role !== "CONSUMER")) return pid;
      }
    }
    return null;
  };

  function snapshot(call) {
    return {
      conversationId: call.conversationId,
      dialogId: call.dialogId,
      serviceId: call.serviceId,
      mode: call.mode,
      agentId: call.agentId,
      expires: call.expires,
      sessionState: call.sessionState
    };
  }

  function log(level, text) {
    if (root.console && root.CallopsCallHandlerDebug) root.console[level === "warn" ? "warn" : "log"]("[callops] " + text);
  }

  // --- The handler (I/O: websocket, lpTag, the DOM) ----------------------------------------------

  /**
   * options: websocketUrl, jwt, visitor {visitorName, ssid, svid, scid?, cid?, eid?},
   * decide(invitation) -> "accept" | "decline" (or a Promise of it), and optional callbacks
   * onInvitation, onAccepted, onClosed(call, reason), onError({msg, id}), onResume.
   */
  function CallHandler(options) {
    this.options = options;
    this.lpTag = options.lpTag || root.lpTag;
    this.document = options.document || root.document;
    this.tracker = new InvitationTracker({ consumerId: options.consumerId });
    this.conversationId = null;
    this.history = []; // what happened, for whoever watches the page
    this.errors = []; // sessionError payloads
    this._requests = {};
    this._nextId = 0;
    this._timer = null;
    this._keepalive = null;
    this._waiters = [];
  }

  CallHandler.prototype._record = function (type, detail) {
    var entry = { type: type, at: Date.now(), detail: detail || null };
    this.history.push(entry);
    this._waiters = this._waiters.filter(function (w) {
      if (w.type !== type) return true;
      w.resolve(entry);
      return false;
    });
  };

  /** A Promise of the first history entry of this type (for tests and monitoring). */
  CallHandler.prototype.when = function (type) {
    var self = this;
    for (var i = 0; i < this.history.length; i++) if (this.history[i].type === type) return Promise.resolve(this.history[i]);
    return new Promise(function (resolve) { self._waiters.push({ type: type, resolve: resolve }); });
  };

  /** Connect, InitConnection, request a conversation, subscribe; resolves with the conversation id. */
  CallHandler.prototype.start = function () {
    var self = this;
    this._bindLpTag();
    return this._connect()
      .then(function () {
        return self._request("cm.ConsumerRequestConversation", { channelType: "MESSAGING" }).catch(function (e) {
          // After a reload the consumer's conversation is still open (a call may be running in it):
          // LivePerson refuses a second one; the subscription below brings the open one back.
          if (/already has open conversation/.test(e.message)) return { body: { conversationId: null }, reused: true };
          throw e;
        });
      })
      .then(function (resp) {
        self.conversationId = resp.body.conversationId;
        if (resp.reused) log("info", "an open conversation exists (page reloaded): subscribing to it");
        // Step 2: subscribe to conversation metadata -- the invitation arrives in it.
        return self._request("cqm.SubscribeExConversations", { convState: ["OPEN"] });
      })
      .then(function () {
        self._record("ready", { conversationId: self.conversationId });
        return self.conversationId;
      });
  };

  CallHandler.prototype.stop = function () {
    clearTimeout(this._timer);
    clearInterval(this._keepalive);
    if (this.ws) this.ws.close(1000, "page done");
  };

  // Step 1: InitConnection with CO_BROWSE and the JWT (browsers cannot set handshake headers).
  CallHandler.prototype._connect = function () {
    var self = this;
    return new Promise(function (resolve, reject) {
      var ws = new WebSocket(self.options.websocketUrl);
      self.ws = ws;
      ws.onopen = function () {
        self._request("InitConnection", undefined, [
          { type: ".ams.headers.ClientProperties", deviceFamily: "DESKTOP", os: "LINUX", features: ["CO_BROWSE"] },
          { type: ".ams.headers.ConsumerAuthentication", jwt: self.options.jwt }
        ]).then(function () {
          self._keepalive = setInterval(function () { self._request("GetClock").catch(function () {}); }, KEEPALIVE_MS);
          resolve();
        }, reject);
      };
      ws.onmessage = function (event) { self._frame(event.data); };
      ws.onerror = function () { reject(new Error("websocket error: " + self.options.websocketUrl)); };
      ws.onclose = function (event) {
        clearInterval(self._keepalive);
        self._record("disconnected", { code: event.code, reason: event.reason });
        Object.keys(self._requests).forEach(function (id) { self._requests[id].reject(new Error("websocket closed (" + event.code + ")")); });
        self._requests = {};
      };
    });
  };

  CallHandler.prototype._request = function (type, body, headers) {
    var self = this;
    var id = String(this._nextId++);
    var frame = { kind: "req", id: id, type: type };
    if (headers) frame.headers = headers;
    if (body !== undefined) frame.body = body;
    return new Promise(function (resolve, reject) {
      self._requests[id] = { resolve: resolve, reject: reject, type: type };
      self.ws.send(JSON.stringify(frame));
    });
  };

  CallHandler.prototype._frame = function (data) {
    var frame;
    try { frame = JSON.parse(data); } catch (e) { return; }
    if (frame.kind === "resp") {
      var pending = this._requests[frame.reqId];
      if (!pending) return;
      delete this._requests[frame.reqId];
      if (frame.code >= 200 && frame.code < 300) pending.resolve(frame);
      else pending.reject(new Error(pending.type + " failed with code " + frame.code + ": " + JSON.stringify(frame.body)));
    } else if (frame.kind === "notification" && frame.type === "cqm.ExConversationChangeNotification") {
      this._apply(this.tracker.receive(frame.body, Date.now() / 1000));
    }
  };

  CallHandler.prototype._apply = function (events) {
    var self = this;
    events.forEach(function (event) {
      if (event.type === "invited") self._invited(event.call);
      else if (event.type === "accepted") self._accepted(event.call);
      else self._closed(event.call, event.reason);
    });
    // Expiry: an invitation not accepted in time closes even if the server never says so.
    clearTimeout(this._timer);
    var next = this.tracker.nextDeadline();
    if (next !== null) {
      this._timer = setTimeout(function () { self._apply(self.tracker.tick(Date.now() / 1000)); }, Math.max(0, next * 1000 - Date.now()) + 10);
    }
  };

  /** lpTag.events.publish on channel lpCoBrowse, after checking the payload ourselves. */
  CallHandler.prototype._publish = function (eventName, payload) {
    this.lpTag.events.publish(LPTAG_CHANNEL, eventName, payload);
    this._record(eventName, payload || null);
  };

  // Step 3: an invitation -> cobrowseOffered at once; then ask the visitor.
  CallHandler.prototype._invited = function (call) {
    var self = this;
    var visitor = this.options.visitor;
    this._record("invited", call);
    try {
      this._publish("cobrowseOffered", buildCallPayload("cobrowseOffered", call, visitor));
    } catch (e) {
      this._record("payload-error", { event: "cobrowseOffered", problems: e.problems, message: e.message });
      return;
    }
    if (this.options.onInvitation) this.options.onInvitation(call);
    Promise.resolve(this.options.decide ? this.options.decide(call) : "decline").then(function (answer) {
      if (!self.tracker.calls[call.dialogId]) return; // closed (cancelled, expired) meanwhile
      // Step 4: accept or decline, with the same mandatory fields.
      if (answer === "accept") {
        self.createContainer(); // Step 5: the container, at the latest on accept
        self.tracker.accepted(call.dialogId);
        self._publish("cobrowseAccepted", buildCallPayload("cobrowseAccepted", call, visitor));
      } else {
        self.tracker.declined(call.dialogId);
        self._publish("cobrowseDeclined", buildCallPayload("cobrowseDeclined", call, visitor));
      }
    }).catch(function (e) {
      self._record("payload-error", { message: String(e && e.message ? e.message : e), problems: e && e.problems });
    });
  };

  CallHandler.prototype._accepted = function (call) {
    this._record("accepted", call);
    if (this.options.onAccepted) this.options.onAccepted(call);
  };

  // Hang-up, cancelled invitation, expiry, decline: the COBROWSE dialog goes CLOSED.
  CallHandler.prototype._closed = function (call, reason) {
    this._record("closed", { call: call, reason: reason });
    this.removeContainer();
    if (this.options.onClosed) this.options.onClosed(call, reason);
  };

  /** The element the call app renders into (class lp_cobrowse_callscreen_container). */
  CallHandler.prototype.createContainer = function () {
    var doc = this.document;
    var existing = doc.getElementsByClassName(CONTAINER_CLASS)[0];
    if (existing) return existing;
    var div = doc.createElement("div");
    div.className = CONTAINER_CLASS;
    div.textContent = "Connecting your call..."; // a loading indicator; the call UI replaces it
    (this.options.containerParent || doc.body).appendChild(div);
    return div;
  };

  CallHandler.prototype.removeContainer = function () {
    var div = this.document.getElementsByClassName(CONTAINER_CLASS)[0];
    if (div && div.parentNode) div.parentNode.removeChild(div);
  };

  // sessionResume: after a reload the call app found an active call -> container, sliderOpened.
  // sessionError: {msg, id}; show msg to the visitor.
  CallHandler.prototype._bindLpTag = function () {
    var self = this;
    this.lpTag.events.bind({
      appName: LPTAG_APP_NAME,
      eventName: "sessionResume",
      func: function (data) {
        self._record("sessionResume", data || null);
        self.createContainer();
        self._publish("sliderOpened");
        if (self.options.onResume) self.options.onResume(data);
      }
    });
    this.lpTag.events.bind({
      appName: LPTAG_APP_NAME,
      eventName: "sessionError",
      func: function (data) {
        var known = data && SESSION_ERROR_IDS.indexOf(data.id) >= 0;
        var error = { id: known ? data.id : "UNKNOWN", msg: (data && data.msg) || "" };
        self.errors.push(error);
        self._record("sessionError", error);
        if (self.options.onError) self.options.onError(error);
      }
    });
  };

  var api = {
    LPTAG_CHANNEL: LPTAG_CHANNEL,
    LPTAG_APP_NAME: LPTAG_APP_NAME,
    CONTAINER_CLASS: CONTAINER_CLASS,
    CALL_MODES: CALL_MODES,
    SESSION_ERROR_IDS: SESSION_ERROR_IDS,
    DEFAULT_INVITE_TTL: DEFAULT_INVITE_TTL,
    EXPIRY_TOLERANCE: EXPIRY_TOLERANCE,
    validateCallPayload: validateCallPayload,
    buildCallPayload: buildCallPayload,
    PayloadError: PayloadError,
    findCallDialogs: findCallDialogs,
    InvitationTracker: InvitationTracker,
    CallHandler: CallHandler
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.CallopsCallHandler = api;
})(typeof window !== "undefined" ? window : this);
