/*
 * What the call app stand-in (consumer) and the Agent Workspace stand-in (agent) share:
 *
 *   callopsWebrtcStats.reduce(pc) -> Promise<{kinds: {audio: {...}, video: {...}}, selected_pair}>
 *     getStats() reduced to callops' figures: per media kind packets/bytes sent and received, loss,
 *     jitter, round-trip time and frames decoded (audio: 20 ms frames received and not concealed),
 *     and the selected candidate pair with its relayProtocol;
 *   callopsWebrtcStats.phases(target) -> mark(phase)
 *     target.phases (phase -> epoch ms; the first mark wins) and target.when(phase), a Promise of
 *     the phase's time (at once if reached): what callops' driver awaits, nothing polls;
 *   callopsWebrtcStats.watchStates(pc, mark, failed)
 *     marks ice_checking, ice_connected and dtls_connected from the connection's states and calls
 *     failed(why) when ICE or the connection fails.
 */
(function (root) {
  "use strict";

  function candidateInfo(c) {
    if (!c) return null;
    return { type: c.candidateType, protocol: c.protocol, relay_protocol: c.relayProtocol || null,
             address: c.address || c.ip || "", port: c.port || 0 };
  }

  /** getStats reduced to callops' per-kind figures and the selected pair. */
  function reduce(pc) {
    return pc.getStats().then(function (report) {
      var kinds = {};
      var byId = {};
      var pair = null;
      report.forEach(function (s) { byId[s.id] = s; });
      function entry(kind) {
        return kinds[kind] || (kinds[kind] = { packets_sent: 0, bytes_sent: 0, packets_received: 0, packets_lost: 0,
                                               jitter_ms: 0, rtt_ms: null, frames_decoded: 0 });
      }
      report.forEach(function (s) {
        if (s.type === "outbound-rtp" && s.kind) {
          entry(s.kind).packets_sent += s.packetsSent || 0;
          entry(s.kind).bytes_sent += s.bytesSent || 0;
        } else if (s.type === "inbound-rtp" && s.kind) {
          var e = entry(s.kind);
          e.packets_received += s.packetsReceived || 0;
          e.packets_lost += Math.max(0, s.packetsLost || 0);
          e.jitter_ms = Math.max(e.jitter_ms, (s.jitter || 0) * 1000);
          if (s.kind === "video") e.frames_decoded += s.framesDecoded || 0;
          // audio: 20 ms frames actually received and decoded (not concealment)
          else e.frames_decoded += Math.floor(((s.totalSamplesReceived || 0) - (s.concealedSamples || 0)) / 960);
        } else if (s.type === "remote-inbound-rtp" && s.kind && s.roundTripTime !== undefined) {
          entry(s.kind).rtt_ms = Math.round(s.roundTripTime * 100000) / 100;
        } else if (s.type === "transport" && s.selectedCandidatePairId) {
          pair = byId[s.selectedCandidatePairId];
        }
      });
      if (!pair) report.forEach(function (s) { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
      var selected = pair ? { local: candidateInfo(byId[pair.localCandidateId]), remote: candidateInfo(byId[pair.remoteCandidateId]) } : null;
      return { kinds: kinds, selected_pair: selected };
    });
  }

  function phases(target) {
    var waiters = [];
    target.phases = target.phases || {};
    target.when = function (phase) {
      if (target.phases[phase] !== undefined) return Promise.resolve(target.phases[phase]);
      return new Promise(function (resolve) { waiters.push({ phase: phase, resolve: resolve }); });
    };
    return function mark(phase) {
      if (target.phases[phase] !== undefined) return;
      target.phases[phase] = performance.timeOrigin + performance.now();
      waiters = waiters.filter(function (w) {
        if (w.phase !== phase) return true;
        w.resolve(target.phases[phase]);
        return false;
      });
    };
  }

  function watchStates(pc, mark, failed) {
    pc.oniceconnectionstatechange = function () {
      var state = pc.iceConnectionState;
      if (state === "checking") mark("ice_checking");
      else if (state === "connected" || state === "completed") mark("ice_connected");
      else if (state === "failed") failed("ICE failed");
    };
    pc.onconnectionstatechange = function () {
      if (pc.connectionState === "connected") mark("dtls_connected");
      else if (pc.connectionState === "failed") failed("connection failed");
    };
  }

  root.callopsWebrtcStats = { reduce: reduce, phases: phases, watchStates: watchStates };
})(window);
