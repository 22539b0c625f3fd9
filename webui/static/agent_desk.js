// Agent desk: server-sent events fill the screen pop; buttons post controls with the CSRF token.
(function () {
  var desk = document.getElementById("desk");
  if (!desk || !window.EventSource) { return; }
  var pop = document.getElementById("pop");
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var LABELS = {logged_out: "已签出", available: "就绪", on_break: "示忙", after_call_work: "话后处理",
                idle: "空闲", reserved: "预占", ringing: "振铃", in_call: "通话中", wrap_up: "话后处理"};
  function label(code) { return LABELS[code] || code || ""; }
  function text(sel, value) { var el = document.querySelector(sel); if (el) { el.textContent = value || ""; } }
  function showPop(data) {
    pop.dataset.call = data.call_uuid || "";
    text('[data-testid="pop-number"]', data.number);
    text('[data-testid="pop-citizen"]', data.citizen ? data.citizen.name : "");
    var list = document.querySelector('[data-testid="pop-tickets"]');
    list.textContent = "";
    var field = function (id, value) { var el = document.getElementById(id); if (el && value !== undefined) { el.value = value || ""; } };
    field("tf-call", data.call_uuid);
    field("tf-phone", data.number);
    field("tf-name", data.citizen ? data.citizen.name : "");
    (data.tickets || []).forEach(function (t) {
      var li = document.createElement("li");
      li.textContent = t.number + " " + t.title + " (" + t.status + ")";
      list.appendChild(li);
    });
  }
  var source = new EventSource(desk.dataset.events);
  source.addEventListener("answered", function (e) { showPop(JSON.parse(e.data)); });
  source.addEventListener("queue", function (e) {
    var d = JSON.parse(e.data);
    var el = document.querySelector('[data-testid="waiting"]');
    if (el) { el.textContent = d.queue + " " + d.waiting; }
  });
  source.addEventListener("agent", function (e) {
    var d = JSON.parse(e.data);
    text('[data-testid="agent-status"]', label(d.status));
    text('[data-testid="agent-state"]', label(d.state));
  });
  desk.addEventListener("click", function (e) {
    var callback = e.target.dataset ? e.target.dataset.callback : null;
    if (callback) {
      fetch(callback, {method: "POST", headers: {"X-CSRF-Token": token}})
        .then(function (r) { return r.json(); })
        .then(function (d) {
          text("#desk-error", d.ok ? "" : d.error);
          // Claimed and dialling: reload to show the outcome form of this call-back.
          if (d.ok) { e.target.disabled = true; window.location.reload(); }
        });
      return;
    }
    var act = e.target.dataset ? e.target.dataset.act : null;
    if (!act) { return; }
    var body = new URLSearchParams({action: act, call_uuid: pop.dataset.call || "", reason: "小休"});
    fetch(desk.dataset.action, {method: "POST", body: body, headers: {"X-CSRF-Token": token}})
      .then(function (r) { return r.json(); })
      .then(function (d) {
        text("#desk-error", d.ok ? "" : d.error);
        if (d.ok) { text('[data-testid="agent-status"]', label(d.status)); text('[data-testid="agent-state"]', label(d.state)); }
      });
  });
}());
