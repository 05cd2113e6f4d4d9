/*
 * callapp.js -- callops' stand-in for LivePerson's voice/video call application (the part lpTag
 * loads that renders into the page's container and runs the WebRTC call).
 *
 * It listens to the page's lpTag events on channel "lpCoBrowse" and talks to the emulator's
 * CoBrowse stand-in (docs/emulator.md) with the page's JWT:
 *
 *   cobrowseOffered  -> warm up (see warmUp()), connect the CoBrowse channel, forward the event
 *   cobrowseAccepted -> forward (the emulator joins us to the call) and, while it travels, find
 *                       the container (none: sessionError), get media (refused:
 *                       NO_CAMERA_ACCESS; no WebRTC: BROWSER_NOT_SUPPORTED) and create the
 *                       peer connection; answer the agent's offer at once (our tracks follow
 *                       when the camera is ready), trickle our candidates, apply the agent's;
 *                       ICE/DTLS failure or timeout: UNABLE_TO_CONNECT; the agent's socket
 *                       gone: AGENT_DISCONNECTED
 *   cobrowseDeclined -> forward, close the channel
 *   sliderOpened     -> (after sessionResume) re-join the call and run it again
 *
 * What a reload needs (the call's payload) is kept in sessionStorage; on load, an active call
 * found there fires sessionResume (appName "cobrowse"). Configuration comes from
 * window.lpTagStandIn = {cobrowseUrl, jwt, iceServers, iceTransportPolicy, iceTimeoutMs, warmUp}
 * (warmUp: false turns the warm-up off).
 *
 * For the test driver: window.lpCallApp.state() (phases in epoch ms, errors, ICE candidate errors)
 * and window.lpCallApp.stats() (getStats reduced to the figures of callops' call report).
 */
(function (root) {
  "use strict";
  var STORAGE_KEY = "lpCallAppActiveCall";
  var CONTAINER_CLASS = "lp_cobrowse_callscreen_container";
  var INVITATION_LIFETIME_MS = 125000; // an invitation expires after two minutes
  var MESSAGES = {
    UNABLE_TO_CONNECT: "We could not connect your call.",
    BROWSER_NOT_SUPPORTED: "Your browser does not support voice and video calls.",
    NO_CAMERA_ACCESS: "We cannot access your camera or microphone.",
    AGENT_DISCONNECTED: "The agent got disconnected."
  };

  function config() { return root.lpTagStandIn || {}; }

  var app = {
    phases: {}, // phase -> epoch ms
    errors: [], // sessionError payloads raised
    iceErrors: [], // RTCPeerConnectionIceErrorEvent: {errorCode, errorText, url, address, port}
    notes: [],
    closedReason: null,
    channel: null,
    pc: null,
    warm: null, // the next offer's peer connection, made at the accept
    payload: null,
    epoch: 0,
    remoteCandidates: 0,
    _pendingCandidates: [],
    _ids: 0,
    _acks: {}
  };
  root.lpCallApp = app;

  var mark = root.callopsWebrtcStats.phases(app);

  function sessionError(id, detail) {
    if (app.errors.some(function (e) { return e.id === id; })) return;
    var error = { id: id, msg: MESSAGES[id] };
    app.errors.push({ id: id, msg: MESSAGES[id], detail: detail || "" });
    console.warn("call app: sessionError " + id + (detail ? " (" + detail + ")" : ""));
    mark("error");
    root.lpTag.events.trigger("cobrowse", "sessionError", error);
  }

  // --- the CoBrowse channel ------------------------------------------------------------------

  function connectChannel() {
    if (app.channel) return app.channel.ready;
    var cfg = config();
    var ws = new WebSocket(cfg.cobrowseUrl);
    var channel = { ws: ws };
    channel.ready = new Promise(function (resolve, reject) {
      ws.onopen = function () { request({ type: "auth", role: "consumer", jwt: cfg.jwt }).then(resolve, reject); };
      ws.onerror = function () { reject(new Error("CoBrowse channel: websocket error")); };
    });
    ws.onmessage = function (event) { received(JSON.parse(event.data)); };
    ws.onclose = function () {
      Object.keys(app._acks).forEach(function (id) { app._acks[id].reject(new Error("CoBrowse channel closed")); });
      app._acks = {};
      if (app.channel === channel) app.channel = null;
    };
    app.channel = channel;
    return channel.ready;
  }

  function send(message) {
    if (app.channel && app.channel.ws.readyState === 1) app.channel.ws.send(JSON.stringify(message));
  }

  function request(message) {
    var id = "c" + (app._ids++);
    message.id = id;
    return new Promise(function (resolve, reject) {
      app._acks[id] = { resolve: resolve, reject: reject };
      app.channel.ws.send(JSON.stringify(message));
    });
  }

  function received(frame) {
    if ((frame.type === "ack" || frame.type === "error") && frame.id && app._acks[frame.id]) {
      var pending = app._acks[frame.id];
      delete app._acks[frame.id];
      if (frame.type === "ack") pending.resolve(frame);
      else pending.reject(new Error("CoBrowse " + frame.code + " " + frame.title + ": " + frame.details));
      return;
    }
    if (frame.type === "signal") signal(frame.data || {});
    else if (frame.type === "presence" && frame.role === "agent" && frame.event === "left") {
      if (app.pc && app.closedReason === null && !app.errors.length) sessionError("AGENT_DISCONNECTED", "the agent's socket left the call");
    } else if (frame.type === "state" && frame.sessionState === "CLOSED") {
      hangUp(frame.reason || "closed");
    }
  }

  // --- the call ------------------------------------------------------------------------------

  function signal(data) {
    if (data.epoch !== undefined && data.epoch < app.epoch) return; // an older epoch (before a resume)
    if (data.kind === "offer") {
      mark("offer_received");
      app.epoch = data.epoch || 0;
      answer(data.sdp);
    } else if (data.kind === "candidate") {
      app.remoteCandidates++;
      var candidate = { candidate: data.candidate, sdpMid: data.sdpMid, sdpMLineIndex: data.sdpMLineIndex };
      if (app.pc && app.pc.remoteDescription) app.pc.addIceCandidate(candidate).catch(note("addIceCandidate"));
      else app._pendingCandidates.push(candidate);
    } else if (data.kind === "end-of-candidates") {
      if (app.pc && app.pc.remoteDescription) app.pc.addIceCandidate().catch(note("end-of-candidates"));
    } else if (data.kind === "bye") {
      app.notes.push("agent said bye: " + (data.reason || ""));
    }
  }

  function note(what) {
    return function (e) { app.notes.push(what + ": " + e); };
  }

  /**
   * The peer connection of the next offer: made when the invitation is shown (warmUp()) or, at
   * the latest, as soon as the visitor accepts (while the accept travels to the agent and the
   * camera starts). ``pool``: iceCandidatePoolSize.
   */
  function newPeerConnection(pool) {
    var cfg = config();
    var pc = new RTCPeerConnection({
      iceServers: cfg.iceServers || [],
      iceTransportPolicy: cfg.iceTransportPolicy || "all",
      bundlePolicy: "max-bundle",
      iceCandidatePoolSize: pool || 0
    });
    var gathered = 0;
    pc.onicecandidate = function (event) {
      if (event.candidate && event.candidate.candidate) {
        gathered++;
        mark("first_candidate");
        send({ type: "signal", serviceId: app.payload.serviceId, data: {
          kind: "candidate", candidate: event.candidate.candidate, sdpMid: event.candidate.sdpMid,
          sdpMLineIndex: event.candidate.sdpMLineIndex, epoch: pc.epoch } });
      } else if (!event.candidate) {
        mark("gathered");
        send({ type: "signal", serviceId: app.payload.serviceId, data: { kind: "end-of-candidates", epoch: pc.epoch } });
        // nothing to offer the agent (e.g. relay only and every TURN server failed): no call
        if (!gathered) fail("no ICE candidates gathered (policy " + (cfg.iceTransportPolicy || "all") + ")");
      }
    };
    pc.onicecandidateerror = function (event) {
      var error = { errorCode: event.errorCode, errorText: event.errorText, url: event.url, address: event.address, port: event.port };
      app.iceErrors.push(error);
      console.warn("call app: ICE candidate error " + event.errorCode + " " + event.errorText + " (" + event.url + ")");
    };
    root.callopsWebrtcStats.watchStates(pc, mark, fail);
    pc.ontrack = function (event) {
      app.remoteStream = event.streams[0] || new MediaStream([event.track]);
      if (app.remoteElement) app.remoteElement.srcObject = app.remoteStream;
    };
    return pc;
  }

  /**
   * Warm-up while the visitor reads the invitation: the answering peer connection, with a
   * one-candidate pool. Chromium drops an answerer's pool when it applies the answer, before it
   * gathers, so the pool's candidates are never used -- but gathering them opens a TLS session
   * with each turns: server (certificate checked), which the call's own gathering then resumes:
   * its TLS connection to the relay takes 3-7 ms instead of 26-36 ms (Chromium's log). The pool's TURN
   * allocation is released with the answer, a decline, a hang-up, or when the invitation
   * expires (two minutes).
   */
  function warmUp() {
    if (app.warm || !root.RTCPeerConnection || config().warmUp === false) return;
    try {
      var pc = newPeerConnection(1);
      app.warm = pc;
      mark("warm_up");
      setTimeout(function () { if (app.warm === pc) { pc.close(); app.warm = null; } }, INVITATION_LIFETIME_MS);
    } catch (e) {
      app.notes.push("warm-up: " + e);
    }
  }

  function startCall(payload) {
    app.payload = payload;
    app.closedReason = null;
    mark("call_started");
    var container = document.getElementsByClassName(CONTAINER_CLASS)[0];
    if (!container) {
      sessionError("UNABLE_TO_CONNECT", "no element with class " + CONTAINER_CLASS + " on the page");
      return;
    }
    if (!root.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      sessionError("BROWSER_NOT_SUPPORTED", "RTCPeerConnection or getUserMedia missing");
      return;
    }
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ payload: payload, savedAt: Date.now() }));
    } catch (e) { app.notes.push("sessionStorage: " + e); }
    var video = payload.mode === "VIDEO_CALL";
    // camera and peer connection at once, while the agent is told and sends its offer
    app.media = navigator.mediaDevices.getUserMedia({ audio: true, video: video }).then(function (stream) {
      mark("media");
      container.innerHTML = "";
      var remote = document.createElement(video ? "video" : "audio");
      remote.autoplay = true;
      remote.muted = true; // headless: nobody listens; the decoder still runs
      remote.className = "lp_call_remote";
      if (app.remoteStream) remote.srcObject = app.remoteStream;
      container.appendChild(remote);
      app.remoteElement = remote;
      app.stream = stream;
      return stream;
    }, function (e) {
      app.mediaFailed = true;
      sessionError("NO_CAMERA_ACCESS", e.name + ": " + e.message);
      throw e;
    });
    app.media.catch(function () {});
    try {
      if (!app.warm || app.warm.signalingState === "closed") app.warm = newPeerConnection();
      mark("pc_created");
    } catch (e) {
      app.warm = null; // answer() tries again and reports the error
      app.notes.push("RTCPeerConnection: " + e);
    }
  }

  /** The visitor's accept was refused: no call, give back the camera and the TURN allocations. */
  function releaseCall() {
    if (app.warm) { app.warm.close(); app.warm = null; }
    if (app.media) app.media.then(function (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }, function () {});
  }

  /** The camera/microphone tracks into the answered call (no renegotiation: replaceTrack). */
  function attachMedia(pc, stream) {
    stream.getTracks().forEach(function (track) {
      var transceiver = pc.getTransceivers().filter(function (t) {
        return t.receiver.track.kind === track.kind && !t.sender.track && !t.stopped;
      })[0];
      if (!transceiver) { app.notes.push("no " + track.kind + " in the agent's offer: not sent"); return; }
      transceiver.sender.replaceTrack(track).catch(note("replaceTrack"));
      if (transceiver.sender.setStreams) transceiver.sender.setStreams(stream);
    });
  }

  /**
   * Answer the agent's offer at once -- sendrecv, the tracks follow when the camera is ready --
   * so that ICE gathering (which a browser starts only once the answer is set) and the agent's
   * checks do not wait for the camera. A camera refused before the offer: no answer.
   */
  function answer(offerSdp) {
    var cfg = config();
    if (!app.media) { app.notes.push("offer before the call started: ignored"); return; }
    if (app.mediaFailed) { app.notes.push("offer after the camera was refused: not answered"); return; }
    var pc;
    try {
      pc = app.warm || newPeerConnection();
    } catch (e) {
      sessionError("UNABLE_TO_CONNECT", String(e));
      return;
    }
    app.warm = null;
    if (app.pc) app.pc.close();
    app.pc = pc;
    pc.epoch = app.epoch;
    var kinds = app.payload.mode === "VIDEO_CALL" ? ["audio", "video"] : ["audio"];
    var remoteSet = pc.setRemoteDescription({ type: "offer", sdp: offerSdp }).then(function () {
      mark("remote_set");
      app._pendingCandidates.splice(0).forEach(function (c) { pc.addIceCandidate(c).catch(note("addIceCandidate")); });
      pc.getTransceivers().forEach(function (t) {
        if (kinds.indexOf(t.receiver.track.kind) >= 0) t.direction = "sendrecv";
      });
    });
    remoteSet.then(function () {
      return pc.createAnswer();
    }).then(function (description) {
      return pc.setLocalDescription(description);
    }).then(function () {
      mark("local_set");
      // trickle ICE: the answer goes at once, candidates follow one by one
      send({ type: "signal", serviceId: app.payload.serviceId, data: { kind: "answer", sdp: pc.localDescription.sdp, epoch: pc.epoch } });
      mark("answer_sent");
      var timeout = cfg.iceTimeoutMs || 10000;
      setTimeout(function () {
        if (app.pc === pc && app.phases.dtls_connected === undefined && app.closedReason === null) {
          fail("not connected within " + timeout + " ms");
        }
      }, timeout);
      watchMedia(pc);
    }).catch(function (e) {
      if (!app.errors.length) sessionError("UNABLE_TO_CONNECT", String(e));
    });
    app.media.then(function (stream) {
      // the transceivers exist once the offer is applied, whichever of the two came first
      return remoteSet.then(function () {
        if (app.pc === pc && pc.signalingState !== "closed") attachMedia(pc, stream);
      }, function () {});
    }, function () {
      // NO_CAMERA_ACCESS is raised; the call does not go on without the visitor's media
      if (app.pc === pc) pc.close();
    });
  }

  function fail(why) {
    var detail = why;
    if (app.iceErrors.length) {
      detail += "; ICE candidate errors: " + app.iceErrors.map(function (e) { return e.errorCode + " " + e.errorText + " " + e.url; }).join(", ");
    }
    if (!app.remoteCandidates && !(app.pc && /a=candidate/.test((app.pc.remoteDescription || {}).sdp || ""))) {
      detail += "; the agent sent no candidates";
    }
    sessionError("UNABLE_TO_CONNECT", detail);
  }

  /** first_audio / first_video once inbound media is decoded (from getStats; every 50 ms, bounded). */
  function watchMedia(pc) {
    var kinds = app.payload.mode === "VIDEO_CALL" ? ["audio", "video"] : ["audio"];
    var started = Date.now();
    function check() {
      if (app.pc !== pc || Date.now() - started > 60000) return;
      reduce(pc).then(function (s) {
        kinds.forEach(function (kind) { if (s.kinds[kind] && s.kinds[kind].frames_decoded > 0) mark("first_" + kind); });
        if (kinds.every(function (k) { return app.phases["first_" + k] !== undefined; })) return;
        setTimeout(check, 50);
      });
    }
    check();
  }

  /** getStats reduced to callops' per-kind figures and the selected pair (/web/webrtc-stats.js). */
  function reduce(pc) { return root.callopsWebrtcStats.reduce(pc); }

  app.stats = function () {
    if (app.finalStats) return app.finalStats;
    return app.pc ? reduce(app.pc) : Promise.resolve({ kinds: {}, selected_pair: null });
  };

  app.state = function () {
    return { phases: app.phases, errors: app.errors, iceErrors: app.iceErrors, notes: app.notes,
             closedReason: app.closedReason, remoteCandidates: app.remoteCandidates,
             connectionState: app.pc ? app.pc.connectionState : null };
  };

  function hangUp(reason) {
    if (app.closedReason !== null) return;
    app.closedReason = reason;
    mark("closed");
    try { sessionStorage.removeItem(STORAGE_KEY); } catch (e) { /* ignore */ }
    var pc = app.pc, stream = app.stream;
    if (app.warm) { app.warm.close(); app.warm = null; }
    // the call's last figures, taken before the connection closes (the report reads them later)
    app.finalStats = (pc ? reduce(pc) : Promise.resolve(null)).catch(function () { return null; }).then(function (s) {
      if (pc) pc.close();
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      return s || { kinds: {}, selected_pair: null };
    });
  }

  /** The visitor hangs up. */
  app.hangUp = function () {
    if (app.payload && app.channel) request({ type: "hangup", serviceId: app.payload.serviceId }).catch(function () {});
    hangUp("consumer hung up");
  };

  // --- the page's lpTag events ----------------------------------------------------------------

  var events = root.lpTag.events;

  function forward(eventName) {
    return function (payload) {
      mark(eventName);
      return connectChannel().then(function () {
        return request({ type: "lptag", event: eventName, payload: payload });
      }).catch(function (e) {
        app.notes.push(eventName + ": " + e.message);
        console.error("call app: " + eventName + " refused: " + e.message);
        throw e;
      });
    };
  }

  events.bind({ appName: "lpCoBrowse", eventName: "cobrowseOffered", func: function (p) {
    warmUp();
    forward("cobrowseOffered")(p).catch(function () {});
  } });
  events.bind({ appName: "lpCoBrowse", eventName: "cobrowseAccepted", func: function (payload) {
    // the accept goes out first; camera and peer connection start while it travels
    var refused = false;
    forward("cobrowseAccepted")(payload).catch(function (e) {
      refused = true;
      releaseCall();
      sessionError("UNABLE_TO_CONNECT", e.message);
    });
    setTimeout(function () { if (!refused) startCall(payload); }, 0);
  } });
  events.bind({ appName: "lpCoBrowse", eventName: "cobrowseDeclined", func: function (payload) {
    releaseCall();
    forward("cobrowseDeclined")(payload).then(function () { if (app.channel) app.channel.ws.close(1000, "declined"); }, function () {});
  } });
  events.bind({ appName: "lpCoBrowse", eventName: "sliderOpened", func: function () {
    var saved = app.resumable;
    if (!saved) { app.notes.push("sliderOpened without a call to resume"); return; }
    mark("sliderOpened");
    connectChannel().then(function () {
      return request({ type: "join", serviceId: saved.payload.serviceId });
    }).then(function () {
      return request({ type: "lptag", event: "sliderOpened" });
    }).then(function () {
      startCall(saved.payload);
    }).catch(function (e) {
      try { sessionStorage.removeItem(STORAGE_KEY); } catch (err) { /* ignore */ }
      sessionError("UNABLE_TO_CONNECT", "resume: " + e.message);
    });
  } });

  // An active call in this tab's storage: tell the page (it creates the container, sliderOpened).
  var saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null"); } catch (e) { saved = null; }
  if (saved && saved.payload) {
    app.resumable = saved;
    mark("resume_found");
    events.trigger("cobrowse", "sessionResume", { appName: "cobrowse", serviceId: saved.payload.serviceId });
  }
})(window);
