/*
 * The Agent Workspace stand-in: the agent's side of a call in a real browser.
 *
 * callops' agent role (Python) keeps the agent's CoBrowse channel and calls, over the DevTools
 * protocol:
 *   agentLeg.start({iceServers, iceTransportPolicy, mode})  camera/microphone (fake devices), a peer connection
 *   agentLeg.offer(gatherMs)  -> Promise<sdp>   a complete offer (every candidate inside)
 *   agentLeg.answer(sdp)                       the consumer's answer
 *   agentLeg.candidate({candidate, sdpMid, sdpMLineIndex}) / agentLeg.candidate(null)  trickled ones
 *   agentLeg.when(phase) -> Promise<epoch ms>  ice_checking, ice_connected, dtls_connected,
 *                                               first_audio, first_video, failed
 *   agentLeg.health() -> Promise<{kinds, selected_pair, ice, connection}>
 *   agentLeg.close()
 */
(function (root) {
  "use strict";


  var leg = { phases: {}, pc: null, stream: null, notes: [] };
  root.agentLeg = leg;

  var mark = callopsWebrtcStats.phases(leg);

  function watchMedia(pc, kinds) {
    var started = Date.now();
    function check() {
      if (leg.pc !== pc || Date.now() - started > 60000) return;
      callopsWebrtcStats.reduce(pc).then(function (s) {
        kinds.forEach(function (kind) { if (s.kinds[kind] && s.kinds[kind].frames_decoded > 0) mark("first_" + kind); });
        if (kinds.every(function (k) { return leg.phases["first_" + k] !== undefined; })) return;
        setTimeout(check, 50);
      });
    }
    check();
  }

  leg.start = function (cfg) {
    if (leg.pc) leg.pc.close();
    Object.keys(leg.phases).forEach(function (phase) { delete leg.phases[phase]; }); // a new session
    var video = cfg.mode === "VIDEO_CALL";
    var kinds = video ? ["audio", "video"] : ["audio"];
    var pc = new RTCPeerConnection({
      iceServers: cfg.iceServers || [],
      iceTransportPolicy: cfg.iceTransportPolicy || "all",
      bundlePolicy: "max-bundle"
    });
    leg.pc = pc;
    root.callopsWebrtcStats.watchStates(pc, mark, function () { mark("failed"); });
    pc.ontrack = function (event) {
      // a sink makes Chromium decode (and count) the consumer's media, as a visible call would
      var element = document.createElement(event.track.kind === "video" ? "video" : "audio");
      element.autoplay = true;
      element.muted = true;
      element.srcObject = event.streams[0] || new MediaStream([event.track]);
      document.body.appendChild(element);
    };
    pc.onicecandidateerror = function (event) {
      leg.notes.push("ICE candidate error " + event.errorCode + " " + event.errorText + " (" + event.url + ")");
    };
    var got = leg.stream ? Promise.resolve(leg.stream) : navigator.mediaDevices.getUserMedia({ audio: true, video: video });
    return got.then(function (stream) {
      leg.stream = stream;
      stream.getTracks().forEach(function (track) { pc.addTrack(track, stream); });
      watchMedia(pc, kinds);
      return true;
    });
  };

  leg.offer = function (gatherMs) {
    var pc = leg.pc;
    var gathered = new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      pc.onicegatheringstatechange = function () { if (pc.iceGatheringState === "complete") resolve(); };
      setTimeout(resolve, gatherMs || 10000);
    });
    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () { return gathered; }).then(function () { return pc.localDescription.sdp; });
  };

  leg.answer = function (sdp) {
    return leg.pc.setRemoteDescription({ type: "answer", sdp: sdp }).then(function () { return true; });
  };

  leg.candidate = function (c) {
    return leg.pc.addIceCandidate(c || undefined).then(function () { return true; }, function (e) {
      leg.notes.push("addIceCandidate: " + e);
      return false;
    });
  };

  leg.health = function () {
    var pc = leg.pc;
    if (!pc) return Promise.resolve({ kinds: {}, selected_pair: null, ice: "closed", connection: "closed" });
    return callopsWebrtcStats.reduce(pc).then(function (s) {
      return { kinds: s.kinds, selected_pair: s.selected_pair, ice: pc.iceConnectionState, connection: pc.connectionState };
    });
  };

  leg.close = function () {
    if (leg.pc) leg.pc.close();
    Array.prototype.forEach.call(document.querySelectorAll("audio, video"), function (e) { e.remove(); });
    if (leg.stream) leg.stream.getTracks().forEach(function (t) { t.stop(); });
    leg.pc = null;
    leg.stream = null;
    return true;
  };
})(window);
