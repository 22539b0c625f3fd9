// Agent desk: server-sent events fill the screen pop, the call timer and the call-waiting count; the bar's
// controls are enabled from the server's list of controls valid now (data-enabled, each action's answer and
// each streamed state change), each posts its fields with the CSRF token and the desk's claim, is disabled
// while its request runs, and shows the server's error (in the page's language) when refused. Alt+key runs
// a control (shown in its title). A desk opened in another window wins; this one says so and stops.
(function () {
  var desk = document.getElementById("desk");
  if (!desk || !window.EventSource) { return; }
  var pop = document.getElementById("pop");
  var controls = document.getElementById("controls");
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var LABELS = JSON.parse(desk.dataset.labels || "{}");
  var skills = controls && controls.dataset.skills ? controls.dataset.skills.split(",") : [];
  var consult = byId("dc-consult");
  var waiting = {}, queueLabels = {}, busy = false, superseded = false;
  function label(code) { return LABELS[code] || ""; }
  function text(sel, value) { var el = document.querySelector(sel); if (el) { el.textContent = value || ""; } }
  function byId(id) { return document.getElementById(id); }
  function say(message) { text("#desk-error", message); }
  // Titles name each control's shortcut: "保持 (Alt+H)".
  document.querySelectorAll("#desk [data-key]").forEach(function (b) {
    b.title = (b.title ? b.title + " " : b.textContent.trim() + " ") + "(Alt+" + b.dataset.key.toUpperCase() + ")";
  });
  // Enable only the controls the server says are valid now; none while a request runs or after losing the desk.
  function applyEnabled(list) {
    if (!controls) { return; }
    if (list !== undefined) { controls.dataset.enabled = list.join(","); }
    var on = controls.dataset.enabled ? controls.dataset.enabled.split(",") : [];
    var held = on.indexOf("resume") >= 0;
    var toggle = controls.querySelector('[data-testid="hold-toggle"]');
    if (toggle) { toggle.dataset.act = held ? "resume" : "hold"; toggle.textContent = label(held ? "resume" : "hold"); }
    desk.querySelectorAll("button[data-act]").forEach(function (b) {
      var act = b.dataset.act;
      b.disabled = superseded || busy || on.indexOf(act) < 0 || (act === "to_ivr" && !byId("dc-node").value);
    });
    if (consult) { consult.hidden = !(on.indexOf("cancel_transfer") >= 0 || consult.dataset.state); }
  }
  // The call timer counts from the call's start (server time), only while in a call.
  var timer = document.querySelector('[data-testid="call-timer"]');
  function tick() {
    if (!timer) { return; }
    var since = timer.dataset.since ? Date.parse(timer.dataset.since) : NaN;
    var secs = isNaN(since) ? 0 : Math.max(0, Math.floor((Date.now() - since) / 1000));
    var m = Math.floor(secs / 60), s = secs % 60;
    timer.textContent = (m < 10 ? "0" : "") + m + ":" + (s < 10 ? "0" : "") + s;
  }
  function setSince(since) { if (timer && since !== undefined) { timer.dataset.since = since || ""; tick(); } }
  setInterval(tick, 1000);
  function showState(d) {
    if (d.status !== undefined) {
      text('[data-testid="agent-status"]', label(d.status));
      controls.dataset.status = d.status;
      desk.querySelector(".desk-state").dataset.status = d.status;
      if (d.status !== "on_break") { text('[data-testid="break-shown"]', ""); }
      showMissedRing(d.status);
    }
    if (d.state !== undefined) { text('[data-testid="agent-state"]', label(d.state)); controls.dataset.state = d.state; }
    setSince(d.since);
    if (d.enabled) { applyEnabled(d.enabled); }
  }
  function showWaiting() {
    var el = document.querySelector('[data-testid="waiting"]');
    var box = document.querySelector('[data-testid="call-waiting"]');
    if (!el) { return; }
    var parts = [], total = 0;
    Object.keys(waiting).sort().forEach(function (q) { parts.push((queueLabels[q] || q) + " " + waiting[q]); total += waiting[q]; });
    el.textContent = parts.join(" · ");
    if (box) { box.className = total > 0 ? "notice" : ""; box.dataset.total = String(total); }
  }
  document.querySelectorAll('[data-testid="waiting"] [data-queue]').forEach(function (s) {
    waiting[s.dataset.queue] = parseInt(s.textContent.split(" ").pop(), 10) || 0;
    queueLabels[s.dataset.queue] = s.dataset.label || s.dataset.queue;
  });
  function fillList(testid, tickets) {
    var list = document.querySelector('[data-testid="' + testid + '"]');
    if (!list) { return; }
    list.textContent = "";
    (tickets || []).forEach(function (t) {
      var li = document.createElement("li");
      li.textContent = t.number + " " + t.title + "（" + (t.status_label || "") + "）";
      list.appendChild(li);
    });
  }
  function showPop(data) {
    pop.dataset.call = data.call_uuid || "";
    var who = data.citizen || {};
    text('[data-testid="pop-number"]', data.number);
    text('[data-testid="pop-citizen"]', who.name);
    text('[data-testid="pop-address"]', who.address);
    fillList("pop-open", data.open_tickets);
    fillList("pop-tickets", data.tickets);
    var field = function (id, value) { var el = byId(id); if (el && value !== undefined) { el.value = value || ""; } };
    field("tf-call", data.call_uuid);
    field("tf-phone", data.number);
    field("tf-name", who.name || "");
    field("tf-address", who.address || "");
    if (data.number && /^\d{3,20}$/.test(data.number)) { field("dc-number", data.number); }
  }
  // A ring the agent did not answer put them on break: say so, with 示闲 in the message, until they are back.
  var missedRing = document.querySelector('[data-testid="no-answer-break"]');
  function showMissedRing(status) { if (missedRing && status !== "on_break") { missedRing.hidden = true; } }
  var source = new EventSource(desk.dataset.events + "?desk=" + encodeURIComponent(desk.dataset.token || ""));
  source.addEventListener("superseded", function () { lose(); });
  source.addEventListener("no_answer_break", function () { if (missedRing) { missedRing.hidden = false; } });
  source.addEventListener("answered", function (e) { var d = JSON.parse(e.data); showPop(d); showState({state: "in_call", since: d.since, enabled: d.enabled}); });
  source.addEventListener("queue", function (e) {
    var d = JSON.parse(e.data);
    if (skills.indexOf(d.queue) < 0) { return; }  // another skill's queue: not for this agent
    waiting[d.queue] = d.waiting;
    showWaiting();
  });
  source.addEventListener("agent", function (e) { showState(JSON.parse(e.data)); });
  source.addEventListener("hold", function (e) { var d = JSON.parse(e.data); if (d.enabled) { applyEnabled(d.enabled); } });
  function lose() {
    superseded = true;
    source.close();
    say(desk.dataset.superseded);
    desk.classList.add("superseded");
    desk.dispatchEvent(new CustomEvent("desk-superseded"));  // the browser phone stops too (softphone.js)
    applyEnabled();
  }
  // Attended transfer: ringing -> answered -> ended (completed, cancelled, target hung up, no answer ...).
  function showConsult(d) {
    if (!consult) { return; }
    var live = d && d.state !== "ended";
    consult.dataset.state = live ? d.state : "";
    text('[data-testid="consult-target"]', live ? d.target : "");
    text('[data-testid="consult-state"]', live ? label("consult:" + d.state) : "");
    if (d && d.enabled) { applyEnabled(d.enabled); } else { applyEnabled(); }
  }
  source.addEventListener("consult", function (e) { showConsult(JSON.parse(e.data)); });
  var reason = byId("dc-reason"), reasonText = byId("dc-reason-text"), kind = byId("dc-kind");
  if (reason) { reason.addEventListener("change", function () { reasonText.hidden = reason.value !== "其他"; }); }
  function target() {
    var el = controls.querySelector('.dc-target[data-kind="' + kind.value + '"]');
    return el ? el.value.trim() : "";
  }
  if (kind) {
    kind.addEventListener("change", function () {
      controls.querySelectorAll(".dc-target").forEach(function (el) { el.hidden = el.dataset.kind !== kind.value; });
    });
  }
  // The fields each control sends; the server checks every one of them again.
  function fields(act) {
    var body = {action: act, call_uuid: pop.dataset.call || "", desk: desk.dataset.token || ""};
    if (act === "not_ready") { body.reason = reason.value; body.reason_text = reasonText.value; }
    if (act === "transfer" || act === "attended_transfer" || act === "three_way") {
      body.kind = kind.value; body.target = target();
      if (kind.value === "number" && !/^\d{3,20}$/.test(body.target)) { return desk.dataset.badNumber; }
    }
    if (act === "to_ivr") { body.node = byId("dc-node").value; }
    if (act === "help") { body.note = byId("dc-note").value.trim(); }
    if (act === "dial") {
      body.number = byId("dc-number").value.trim();
      if (!/^\d{3,20}$/.test(body.number)) { return desk.dataset.badNumber; }
    }
    return body;
  }
  function post(url, body) {
    return fetch(url, {method: "POST", body: body ? new URLSearchParams(body) : undefined,
                       headers: {"X-CSRF-Token": token}, credentials: "same-origin"})
      .then(function (r) { return r.json().catch(function () { return {ok: false, error: desk.dataset.failed.replace("%(status)s", r.status)}; }); })
      .catch(function () { return {ok: false, error: desk.dataset.network}; });
  }
  function run(button) {
    var act = button.dataset.act;
    if (superseded) { say(desk.dataset.superseded); return; }
    if (busy) { say(desk.dataset.busy); return; }  // a second click while the first is on its way
    if (button.disabled) { return; }
    var body = fields(act);
    if (typeof body === "string") { say(body); return; }
    busy = true;
    applyEnabled();
    post(desk.dataset.action, body).then(function (d) {
      busy = false;
      say(d.ok ? "" : d.error);
      if (d.superseded) { lose(); return; }
      if (d.ok) {
        if (d.call_uuid) { pop.dataset.call = d.call_uuid; }
        if (consult) { consult.dataset.state = d.consult ? d.consult.state : ""; }
        if (d.consult) { showConsult(d.consult); }
        showState(d);
      } else { applyEnabled(); }
    });
  }
  desk.addEventListener("click", function (e) {
    var dial = e.target.dataset ? e.target.dataset.dial : null;
    if (dial) { e.preventDefault(); byId("dc-number").value = dial; byId("dc-number").focus(); return; }
    var callback = e.target.dataset ? e.target.dataset.callback : null;
    if (callback) {
      e.target.disabled = true;
      post(callback).then(function (d) {
        say(d.ok ? "" : d.error);
        // Claimed and dialling: reload to show the outcome form of this call-back.
        if (d.ok) { window.location.reload(); } else { e.target.disabled = false; }
      });
      return;
    }
    var button = e.target.closest ? e.target.closest("button[data-act]") : null;
    if (button) { run(button); }
  });
  // Alt+key: the control with that data-key (the ticket form's save submits the form).
  document.addEventListener("keydown", function (e) {
    if (!e.altKey || e.ctrlKey || e.metaKey) { return; }
    var b = desk.querySelector('[data-key="' + e.key.toLowerCase() + '"]');
    if (!b) { return; }
    e.preventDefault();
    if (b.dataset.act) { run(b); } else if (!b.disabled) { b.click(); }
  });
  // Tabs beside the ticket form: knowledge, chats, my day.
  document.querySelectorAll("#desk-tabs [role=tab]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      document.querySelectorAll("#desk-tabs [role=tab]").forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        byId(t.getAttribute("aria-controls")).hidden = !on;
      });
    });
  });
  // A chat offered or written brings its tab forward (an agent reading the knowledge base would miss it).
  var chatList = byId("chat-list"), chatTab = document.querySelector('[data-testid="tab-chat"]');
  if (chatList && chatTab && window.MutationObserver) {
    new MutationObserver(function (changes) {
      var added = changes.some(function (c) { return c.addedNodes.length > 0; });
      if (added && byId("chat-panel").hidden) { chatTab.click(); }
    }).observe(chatList, {childList: true});
  }
  // The columns fill the window below the bar: the page itself does not scroll, each column does.
  var grid = byId("desk-grid");
  function fit() { if (grid) { grid.style.height = Math.max(320, window.innerHeight - grid.getBoundingClientRect().top - window.scrollY - 12) + "px"; } }
  window.addEventListener("resize", fit);
  fit();
  tick();
  applyEnabled();
}());
