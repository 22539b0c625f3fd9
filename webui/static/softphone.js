// The desk's browser phone (webui/blueprints/softphone.py): JsSIP (from npm, /vendor/jssip.min.js) registers
// the agent's seat on FreeSWITCH over a secure WebSocket; the ACD's offer rings here (a tone made in the page),
// Answer (Alt+A) takes it with the chosen microphone, Mute (Alt+U) and the keypad (RFC 2833 digits) act on
// it; hold, transfer and hang-up stay the desk's buttons, which the ACD carries out on the switch. On or off
// is remembered by this browser: off, calls ring the desk phone. The microphone is asked for before
// registering, so a browser without it is never offered a call. States in words (data-state: off,
// connecting, registered, ringing, in_call, error, superseded), in the page's language.
(function () {
  var box = document.getElementById("softphone");
  var desk = document.getElementById("desk");
  if (!box || !desk) { return; }
  var W = JSON.parse(box.dataset.words || "{}");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var onBox = document.getElementById("sp-on");
  var stateEl = box.querySelector('[data-testid="sp-state"]');
  var audio = document.getElementById("sp-audio");
  var answerBtn = box.querySelector('[data-phone="answer"]');
  var muteBtn = box.querySelector('[data-phone="mute"]');
  var digits = box.querySelectorAll("[data-digit]");
  var mic = document.getElementById("sp-mic"), speaker = document.getElementById("sp-speaker");
  var KEY_ON = "hotline.softphone.on", KEY_MIC = "hotline.softphone.mic", KEY_SPEAKER = "hotline.softphone.speaker";
  var ua = null, session = null, superseded = false, connectionLost = false, retry = null, calm = null;
  var deskBar = document.getElementById("controls");
  var settled = false;  // the registered line is shown (no word about a call that just ended waits on it)
  var ringTimer = null, ringContext = null;

  function words(key, values) {
    var text = W[key] || "";
    Object.keys(values || {}).forEach(function (name) { text = text.replace("%(" + name + ")s", values[name]); });
    return text;
  }
  function stored(key) { try { return window.localStorage.getItem(key) || ""; } catch (e) { return ""; } }
  function store(key, value) { try { window.localStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  function show(state, message) {
    box.dataset.state = state;
    stateEl.textContent = message || "";
    var live = state === "in_call" && session !== null;
    answerBtn.disabled = state !== "ringing";
    muteBtn.disabled = !live;
    digits.forEach(function (b) { b.disabled = !live; });
    onBox.disabled = superseded || session !== null;
  }
  function number() {
    var who = session ? session.remote_identity : null;
    return who ? (who.uri && who.uri.user) || who.display_name || "" : "";
  }

  // ---- ringing: a 450 Hz tone, one second in three, made in the page (no sound file)
  function startRing() {
    stopRing();
    try {
      ringContext = ringContext || new (window.AudioContext || window.webkitAudioContext)();
      if (ringContext.resume) { ringContext.resume(); }
    } catch (e) { return; }
    function burst() {
      var osc = ringContext.createOscillator(), gain = ringContext.createGain();
      osc.frequency.value = 450;
      gain.gain.value = 0.15;
      osc.connect(gain);
      gain.connect(ringContext.destination);
      osc.start();
      osc.stop(ringContext.currentTime + 1);
    }
    burst();
    ringTimer = setInterval(burst, 3000);
  }
  function stopRing() { if (ringTimer) { clearInterval(ringTimer); ringTimer = null; } }

  // ---- devices
  function micConstraint() { var id = mic.value || stored(KEY_MIC); return id ? {deviceId: {exact: id}} : true; }
  function fill(select, kind, devices, chosen) {
    while (select.options.length > 1) { select.remove(1); }
    devices.filter(function (d) { return d.kind === kind && d.deviceId && d.deviceId !== "default"; })
      .forEach(function (d, i) {
        var option = document.createElement("option");
        option.value = d.deviceId;
        option.textContent = d.label || (kind + " " + (i + 1));
        select.appendChild(option);
      });
    select.value = chosen;
    if (select.value !== chosen) { select.value = ""; }
  }
  function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) { return; }
    navigator.mediaDevices.enumerateDevices().then(function (devices) {
      fill(mic, "audioinput", devices, stored(KEY_MIC));
      fill(speaker, "audiooutput", devices, stored(KEY_SPEAKER));
      speaker.closest("label").hidden = !audio.setSinkId;
      useSpeaker();
    });
  }
  function useSpeaker() { if (audio.setSinkId) { audio.setSinkId(speaker.value || "").catch(function () { /* unplugged */ }); } }
  mic.addEventListener("change", function () {
    store(KEY_MIC, mic.value);
    var pc = session && session.connection;
    if (!pc || box.dataset.state !== "in_call") { return; }
    // Mid-call: the new microphone replaces the old one on the same connection.
    navigator.mediaDevices.getUserMedia({audio: micConstraint()}).then(function (stream) {
      var track = stream.getAudioTracks()[0];
      pc.getSenders().forEach(function (sender) {
        if (sender.track && sender.track.kind === "audio") {
          var old = sender.track;
          sender.replaceTrack(track).then(function () { old.stop(); });
        }
      });
    }).catch(microphoneRefused);
  });
  speaker.addEventListener("change", function () { store(KEY_SPEAKER, speaker.value); useSpeaker(); });

  function microphoneRefused(error) {
    var name = error && error.name;
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      if (name === "OverconstrainedError") { store(KEY_MIC, ""); }
      return words("No microphone was found: plug in a headset, or use the desk phone.");
    }
    return words("The browser did not allow the microphone: allow it for this site (the icon in the address bar), " +
                 "or turn the browser phone off and use the desk phone.");
  }

  // ---- registration
  function start() {
    if (superseded || ua) { return; }
    if (!window.JsSIP) { show("error", words("The phone component could not be loaded: ask the administrator.")); return; }
    if (!window.isSecureContext) {
      show("error", words("The browser allows the microphone on a secure page only (https, or this computer)."));
      return;
    }
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      show("error", words("This browser cannot make calls (no WebRTC): use a current Chrome, Edge or Firefox, or the desk phone."));
      return;
    }
    show("connecting", words("Connecting to the phone server…"));
    // The microphone first: a browser that cannot take a call does not register, so the ACD never offers it one.
    navigator.mediaDevices.getUserMedia({audio: micConstraint()}).then(function (stream) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      listDevices();
      return credentials();
    }, function (error) {
      throw {message: microphoneRefused(error)};
    }).then(register).catch(function (error) {
      if (error && error.superseded) { lose(); return; }
      show("error", (error && error.message) || words("Registration failed; trying again."));
    });
  }
  function credentials() {
    return fetch(box.dataset.credentials, {
      method: "POST", credentials: "same-origin", body: new URLSearchParams({desk: desk.dataset.token || ""}),
      headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}
    }).catch(function () {
      throw {message: words("Network error: the server did not answer.")};
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (d) {
        if (!r.ok || !d.ok) {
          throw {message: d.error || words("The request failed (%(status)s).", {status: r.status}), superseded: d.superseded};
        }
        return d;
      });
    });
  }
  function register(seat) {
    if (!onBox.checked || superseded || ua) { return; }
    ua = new JsSIP.UA({
      sockets: seat.sockets.map(function (url) { return new JsSIP.WebSocketInterface(url); }),
      uri: seat.uri, authorization_user: seat.user, password: seat.password, display_name: seat.display_name,
      register: true, register_expires: 300, session_timers: false, user_agent: "hotline12345-desk",
      connection_recovery_min_interval: 2, connection_recovery_max_interval: 30
    });
    seat.password = "";
    ua.on("connected", function () { if (!session) { show("connecting", words("Connecting to the phone server…")); } });
    ua.on("disconnected", function () {
      if (!ua) { return; }
      connectionLost = true;
      if (session) {
        stateEl.textContent = words("The connection to the phone server was lost; reconnecting. The call may go on: " +
                                    "the desk's buttons (hold, transfer, hang up) still work.");
      } else { show("error", words("unreachable")); }
    });
    ua.on("registered", function () {
      var wasLost = connectionLost;
      connectionLost = false;
      if (session && wasLost && box.dataset.state === "in_call") { stillThere(session); }
      else if (session) { show(box.dataset.state, stateLine()); } else { idle(""); }
    });
    ua.on("registrationFailed", function (e) {
      var causes = JsSIP.C.causes;
      if (e.cause === causes.AUTHENTICATION_ERROR || e.cause === causes.REJECTED) {
        show("error", words("The phone server refused the seat's password: ask the administrator."));
        halt();
        return;
      }
      if (e.cause === causes.CONNECTION_ERROR) { return; }  // the socket's own recovery tries again
      show("error", words("Registration failed; trying again."));
      clearTimeout(retry);
      retry = setTimeout(function () { if (ua && !ua.isRegistered()) { ua.register(); } }, 15000);
    });
    ua.on("newRTCSession", function (e) {
      if (e.originator !== "remote") { return; }
      if (session) { e.session.terminate({status_code: 486, reason_phrase: "Busy Here"}); return; }
      offered(e.session);
    });
    ua.start();
  }
  // Registered says where calls ring, but the ACD offers queue calls only to an agent who is ready: signed out
  // or on break (the desk bar's status, kept by agent_desk.js) the line says so instead.
  function registeredLine() {
    var status = deskBar ? deskBar.dataset.status : "";
    if (status === "logged_out") {
      return words("Registered, but you are signed out: no queue calls are offered to you. Click “Ready” to take calls in this browser.");
    }
    if (status === "on_break") {
      return words("Registered, but you are on break: no queue calls are offered to you. Click “Ready” to take calls in this browser.");
    }
    return words("Registered: calls ring in this browser.");
  }
  function idle(before) {
    clearTimeout(calm);
    settled = !before;
    if (!before) { show("registered", registeredLine()); return; }
    show("registered", before);
    calm = setTimeout(function () {
      if (!session && ua && ua.isRegistered()) { settled = true; show("registered", registeredLine()); }
    }, 5000);
  }
  function halt() {
    clearTimeout(retry);
    if (ua) { var old = ua; ua = null; try { old.stop(); } catch (e) { /* already stopped */ } }
  }
  function stop() { halt(); show("off", words("Off: calls ring your desk phone.")); }
  function lose() {
    superseded = true;
    halt();
    show("superseded", words("This desk was opened in another window: the browser phone works there now."));
  }

  // ---- calls
  function stateLine() {
    if (box.dataset.state === "ringing") { return words("Ringing: %(number)s", {number: number()}); }
    var line = words("In call: %(number)s", {number: number()});
    if (session && session.isOnHold().remote) { line += " · " + words("On hold"); }
    if (session && session.isMuted().audio) { line += " · " + words("Muted"); }
    return line;
  }
  // The call's fate while the connection is lost: the switch's BYE has no way to this browser, but the desk
  // hears the ACD over its own event stream (agent_desk.js keeps the ACD's state on the bar, data-state). The
  // ACD no longer has the agent in a call: the call ended meanwhile, so say so and let the session go, rather
  // than "in call" until the audio's silence ends it half a minute later. Back and still in the call: it goes on.
  function deskInCall() { return !deskBar || deskBar.dataset.state === "in_call"; }
  function endedMeanwhile(s) {
    finished(s, words("The call had ended while the connection was lost."));
    try { s.terminate(); } catch (e) { /* already over */ }
  }
  function stillThere(s) {
    if (deskInCall()) { stateEl.textContent = stateLine(); } else { endedMeanwhile(s); }
  }
  if (deskBar && window.MutationObserver) {
    new MutationObserver(function () {
      if (session && connectionLost && box.dataset.state === "in_call" && !deskInCall()) { endedMeanwhile(session); }
      if (!session && settled && box.dataset.state === "registered") { show("registered", registeredLine()); }
    }).observe(deskBar, {attributes: true, attributeFilter: ["data-state", "data-status"]});
  }
  function offered(s) {
    session = s;
    startRing();
    show("ringing", "");
    stateEl.textContent = stateLine();
    s.on("peerconnection", function (e) { watch(e.peerconnection); });
    s.on("accepted", function () { stopRing(); show("in_call", ""); stateEl.textContent = stateLine(); });
    s.on("hold", function () { stateEl.textContent = stateLine(); });
    s.on("unhold", function () { stateEl.textContent = stateLine(); });
    s.on("muted", function () { showMute(true); });
    s.on("unmuted", function () { showMute(false); });
    s.on("ended", function () { finished(s, words("Call ended.")); });
    s.on("failed", function (e) {
      var causes = JsSIP.C.causes, message = words("The call could not be answered.");
      if (e.cause === causes.CANCELED || e.cause === causes.BYE) { message = words("The call stopped ringing before it was answered."); }
      if (e.cause === causes.USER_DENIED_MEDIA_ACCESS) { message = microphoneRefused({name: "NotAllowedError"}); }
      finished(s, message);
    });
  }
  function watch(pc) {
    pc.addEventListener("track", function (e) {
      audio.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
      useSpeaker();
    });
    pc.addEventListener("connectionstatechange", function () {
      // The switch's BYE may never come over a lost WebSocket; dead media says the call is over.
      if (pc.connectionState === "failed" && session && session.connection === pc) {
        var s = session;
        try { s.terminate(); } catch (e) { /* already ending */ }
        finished(s, words("The call ended: its audio connection was lost."));
      }
    });
  }
  function finished(s, message) {
    if (session !== s) { return; }
    stopRing();
    session = null;
    audio.srcObject = null;
    showMute(false);
    if (ua && ua.isRegistered()) { idle(message); } else if (ua) {
      show(connectionLost ? "error" : "connecting", message);
    } else { show("off", message); }
  }
  function showMute(on) {
    muteBtn.textContent = words(on ? "Unmute" : "Mute");
    muteBtn.setAttribute("aria-pressed", on ? "true" : "false");
    if (session) { stateEl.textContent = stateLine(); }
  }
  answerBtn.addEventListener("click", function () {
    if (!session || box.dataset.state !== "ringing") { return; }
    answerBtn.disabled = true;
    stopRing();
    try {
      session.answer({mediaConstraints: {audio: micConstraint(), video: false}, pcConfig: {iceServers: []}});
    } catch (e) {
      finished(session, words("The call could not be answered."));
    }
  });
  muteBtn.addEventListener("click", function () {
    if (!session || box.dataset.state !== "in_call") { return; }
    if (session.isMuted().audio) { session.unmute({audio: true}); } else { session.mute({audio: true}); }
  });
  digits.forEach(function (b) {
    b.addEventListener("click", function () {
      if (!session || box.dataset.state !== "in_call") { return; }
      session.sendDTMF(b.dataset.digit, {transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833, duration: 160});
    });
  });

  // ---- on / off, the desk lost to another window, leaving the page
  onBox.addEventListener("change", function () {
    store(KEY_ON, onBox.checked ? "1" : "");
    if (onBox.checked) { start(); } else { stop(); }
  });
  desk.addEventListener("desk-superseded", lose);
  window.addEventListener("pagehide", function () { halt(); });
  onBox.checked = stored(KEY_ON) === "1";
  if (onBox.checked) { start(); } else { show("off", words("Off: calls ring your desk phone.")); }
}());
