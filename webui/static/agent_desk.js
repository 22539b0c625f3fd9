// Agent desk: server-sent events fill the screen pop and the call-waiting count; the control panel posts
// each control with its fields and the CSRF token, and shows the server's error (zh / en) when refused.
(function () {
  var desk = document.getElementById("desk");
  if (!desk || !window.EventSource) { return; }
  var pop = document.getElementById("pop");
  var controls = document.getElementById("controls");
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var LABELS = {logged_out: "已签出", available: "就绪", on_break: "示忙", after_call_work: "话后处理",
                idle: "空闲", reserved: "预占", ringing: "振铃", in_call: "通话中", wrap_up: "话后处理"};
  var skills = controls && controls.dataset.skills ? controls.dataset.skills.split(",") : [];
  var consult = byId("dc-consult");
  var CONSULT_LABELS = {ringing: "振铃中", answered: "已接通"};
  var waiting = {};
  function label(code) { return LABELS[code] || code || ""; }
  function text(sel, value) { var el = document.querySelector(sel); if (el) { el.textContent = value || ""; } }
  function byId(id) { return document.getElementById(id); }
  // Enable only the controls that apply: call controls in a call, dialling when idle, end wrap-up in wrap-up;
  // during an attended transfer only complete (once the target answered), cancel and hang up.
  function applyState(state, onHold) {
    if (!controls) { return; }
    if (state !== undefined) { controls.dataset.state = state; }
    if (onHold !== undefined) { controls.dataset.hold = onHold ? "1" : "0"; }
    var st = controls.dataset.state, held = controls.dataset.hold === "1";
    var consulting = consult && st === "in_call" ? consult.dataset.state : "";
    if (consult) { consult.hidden = !consulting; }
    controls.querySelectorAll("[data-need]").forEach(function (b) {
      var need = b.dataset.need, ok;
      if (need === "consult") { ok = !!consulting; }
      else if (need === "consult_answered") { ok = consulting === "answered"; }
      else if (need === "call") { ok = st === "in_call" && (!consulting || b.dataset.act === "hangup"); }
      else { ok = need === "idle" ? st === "idle" : st === need; }
      if (b.dataset.act === "to_ivr" && !byId("dc-node").value) { ok = false; }
      b.disabled = !ok;
    });
    var toggle = controls.querySelector('[data-testid="hold-toggle"]');
    if (toggle) { toggle.textContent = held ? "恢复 Resume" : "保持 Hold"; toggle.dataset.act = held ? "resume" : "hold"; }
  }
  function showWaiting() {
    var el = document.querySelector('[data-testid="waiting"]');
    var box = document.querySelector('[data-testid="call-waiting"]');
    if (!el) { return; }
    var parts = [], total = 0;
    Object.keys(waiting).sort().forEach(function (q) { parts.push(q + " " + waiting[q]); total += waiting[q]; });
    el.textContent = parts.join(" · ");
    if (box) { box.className = total > 0 ? "notice" : ""; box.dataset.total = String(total); }
  }
  document.querySelectorAll('[data-testid="waiting"] [data-queue]').forEach(function (s) {
    waiting[s.dataset.queue] = parseInt(s.textContent.split(" ").pop(), 10) || 0;
  });
  function showPop(data) {
    pop.dataset.call = data.call_uuid || "";
    text('[data-testid="pop-number"]', data.number);
    text('[data-testid="pop-citizen"]', data.citizen ? data.citizen.name : "");
    var list = document.querySelector('[data-testid="pop-tickets"]');
    list.textContent = "";
    var field = function (id, value) { var el = byId(id); if (el && value !== undefined) { el.value = value || ""; } };
    field("tf-call", data.call_uuid);
    field("tf-phone", data.number);
    field("tf-name", data.citizen ? data.citizen.name : "");
    if (data.number && /^\d{3,20}$/.test(data.number)) { field("dc-number", data.number); }
    (data.tickets || []).forEach(function (t) {
      var li = document.createElement("li");
      li.textContent = t.number + " " + t.title + " (" + t.status + ")";
      list.appendChild(li);
    });
  }
  // A ring the agent did not answer put them on break: say so, with 示闲 in the message, until they are back.
  var missedRing = document.querySelector('[data-testid="no-answer-break"]');
  function showMissedRing(status) { if (missedRing && status !== "on_break") { missedRing.hidden = true; } }
  var source = new EventSource(desk.dataset.events);
  source.addEventListener("no_answer_break", function () { if (missedRing) { missedRing.hidden = false; } });
  source.addEventListener("answered", function (e) { showPop(JSON.parse(e.data)); applyState("in_call"); });
  source.addEventListener("queue", function (e) {
    var d = JSON.parse(e.data);
    if (skills.indexOf(d.queue) < 0) { return; }  // another skill's queue: not for this agent
    waiting[d.queue] = d.waiting;
    showWaiting();
  });
  source.addEventListener("agent", function (e) {
    var d = JSON.parse(e.data);
    text('[data-testid="agent-status"]', label(d.status));
    text('[data-testid="agent-state"]', label(d.state));
    showMissedRing(d.status);
    applyState(d.state);
  });
  source.addEventListener("hold", function (e) { applyState(undefined, JSON.parse(e.data).on_hold); });
  // Attended transfer: ringing -> answered -> ended (completed, cancelled, target hung up, no answer ...).
  function showConsult(d) {
    if (!consult) { return; }
    var live = d && d.state !== "ended";
    consult.dataset.state = live ? d.state : "";
    text('[data-testid="consult-target"]', live ? d.target : "");
    text('[data-testid="consult-state"]', live ? (CONSULT_LABELS[d.state] || d.state) : "");
    applyState();
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
    var body = {action: act, call_uuid: pop.dataset.call || ""};
    if (act === "not_ready") { body.reason = reason.value; body.reason_text = reasonText.value; }
    if (act === "transfer" || act === "attended_transfer" || act === "three_way") {
      body.kind = kind.value; body.target = target();
      if (kind.value === "number" && !/^\d{3,20}$/.test(body.target)) { return "号码只能是 3 到 20 位数字 / a number must be 3-20 digits"; }
    }
    if (act === "to_ivr") { body.node = byId("dc-node").value; }
    if (act === "help") { body.note = byId("dc-note").value.trim(); }
    if (act === "dial") {
      body.number = byId("dc-number").value.trim();
      if (!/^\d{3,20}$/.test(body.number)) { return "号码只能是 3 到 20 位数字 / a number must be 3-20 digits"; }
    }
    return body;
  }
  function post(url, body) {
    return fetch(url, {method: "POST", body: body ? new URLSearchParams(body) : undefined,
                       headers: {"X-CSRF-Token": token}, credentials: "same-origin"})
      .then(function (r) { return r.json().catch(function () { return {ok: false, error: "请求失败 / request failed (" + r.status + ")"}; }); })
      .catch(function () { return {ok: false, error: "网络错误 / network error"}; });
  }
  desk.addEventListener("click", function (e) {
    var dial = e.target.dataset ? e.target.dataset.dial : null;
    if (dial) { e.preventDefault(); byId("dc-number").value = dial; byId("dc-number").focus(); return; }
    var callback = e.target.dataset ? e.target.dataset.callback : null;
    if (callback) {
      post(callback).then(function (d) {
        text("#desk-error", d.ok ? "" : d.error);
        // Claimed and dialling: reload to show the outcome form of this call-back.
        if (d.ok) { e.target.disabled = true; window.location.reload(); }
      });
      return;
    }
    var act = e.target.dataset ? e.target.dataset.act : null;
    if (!act) { return; }
    var body = fields(act);
    if (typeof body === "string") { text("#desk-error", body); return; }
    post(desk.dataset.action, body).then(function (d) {
      text("#desk-error", d.ok ? "" : d.error);
      if (d.ok) {
        text('[data-testid="agent-status"]', label(d.status));
        text('[data-testid="agent-state"]', label(d.state));
        showMissedRing(d.status);
        if (d.call_uuid) { pop.dataset.call = d.call_uuid; }
        if (consult) { consult.dataset.state = d.consult ? d.consult.state : ""; }
        if (d.consult) { showConsult(d.consult); }
        applyState(d.state, d.on_hold);
      }
    });
  });
  applyState();
}());
