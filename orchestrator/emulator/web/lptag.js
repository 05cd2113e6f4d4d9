/*
 * lptag.js -- callops' stand-in for LivePerson's lpTag, as far as voice/video calls use it.
 *
 * lpTag.events.publish(appName, eventName, data) delivers an event to the functions bound with
 * lpTag.events.bind({appName, eventName, func}); lpTag.events.trigger is the same for the call
 * application's own events (appName "cobrowse": sessionResume, sessionError). Like lpTag, the
 * stand-in checks the call events of channel "lpCoBrowse": an event with a missing or bad
 * mandatory field is NOT delivered, and the console shows what lpTag's debug mode shows
 * ("Events : Error executing cobrowseOffered eventId: ... LEVEL: ERROR") -- followed by one line
 * naming every bad field, which lpTag does not do.
 *
 * Unlike lpTag, events of appName "cobrowse" triggered before any function was bound are kept
 * and delivered when one binds (the call app may find a call to resume before the page binds).
 */
(function (root) {
  "use strict";
  var MANDATORY = ["serviceId", "agentId", "visitorName", "mode", "ssid", "svid"];
  var CALL_EVENTS = ["cobrowseOffered", "cobrowseAccepted", "cobrowseDeclined"];
  var MODES = ["VOICE_CALL", "VIDEO_CALL"];
  var bindings = [];
  var kept = []; // cobrowse events fired while nobody listened
  var nextEventId = 0;

  function clock() {
    var d = new Date();
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (n) { return (n < 10 ? "0" : "") + n; }).join(":");
  }

  function problems(eventName, data) {
    if (CALL_EVENTS.indexOf(eventName) < 0) return [];
    if (!data || typeof data !== "object") return ["(payload) must be an object"];
    var out = [];
    MANDATORY.forEach(function (field) {
      var value = data[field];
      if (value === undefined || value === null) out.push(field + " is mandatory and missing");
      else if (typeof value !== "string" || value === "") out.push(field + " must be a non-empty string");
    });
    if (typeof data.mode === "string" && data.mode && MODES.indexOf(data.mode) < 0) out.push("mode must be VOICE_CALL or VIDEO_CALL");
    return out;
  }

  function deliver(appName, eventName, data) {
    var delivered = 0;
    bindings.forEach(function (b) {
      if (b.appName === appName && b.eventName === eventName) {
        delivered++;
        try { b.func(data, { appName: appName, eventName: eventName }); }
        catch (e) { console.error(clock() + " Events : Error executing " + eventName + " callback: " + e + " LEVEL: ERROR"); }
      }
    });
    return delivered;
  }

  var events = {
    publish: function (appName, eventName, data) {
      var eventId = "evId_" + (nextEventId++);
      var bad = problems(eventName, data);
      if (appName === "lpCoBrowse" && bad.length) {
        console.error(clock() + " Events : Error executing " + eventName + " eventId: " + eventId + "=" + bad[0] + " LEVEL: ERROR");
        console.error("lpTag stand-in: " + eventName + " not delivered: " + bad.join("; "));
        events.errors.push({ eventName: eventName, eventId: eventId, problems: bad });
        return null;
      }
      events.published.push({ appName: appName, eventName: eventName, data: data || null });
      deliver(appName, eventName, data);
      return eventId;
    },
    trigger: function (appName, eventName, data) {
      if (!deliver(appName, eventName, data) && appName === "cobrowse") kept.push([appName, eventName, data]);
    },
    bind: function (spec, eventName, func) {
      var b = typeof spec === "object" ? spec : { appName: spec, eventName: eventName, func: func };
      bindings.push(b);
      kept = kept.filter(function (k) {
        if (k[0] === b.appName && k[1] === b.eventName) { b.func(k[2], { appName: k[0], eventName: k[1] }); return false; }
        return true;
      });
      return b;
    },
    // what the page published and what failed, for whoever watches the page
    published: [],
    errors: []
  };

  var lpTag = root.lpTag || {};
  lpTag.events = events;
  lpTag.site = lpTag.site || (root.lpTagStandIn && root.lpTagStandIn.account) || "callops";
  var sid = "ssid-" + Math.random().toString(16).slice(2), vid = "svid-" + Math.random().toString(16).slice(2);
  lpTag.taglets = lpTag.taglets || {};
  lpTag.taglets.lp_monitoringSDK = { getSid: function () { return sid; }, getVid: function () { return vid; } };
  root.lpTag = lpTag;
})(window);
