// The citizen's chat window: server-sent events bring the state and the messages, the form posts a message
// with the CSRF token, "end the chat" (or the page closing) leaves. Every text goes in through textContent.
(function () {
  var box = document.getElementById("chat");
  if (!box || !window.EventSource) { return; }
  var log = document.getElementById("chat-log"), status = document.getElementById("chat-status");
  var error = document.getElementById("chat-error"), form = document.getElementById("chat-form");
  var text = document.getElementById("chat-text"), ended = document.getElementById("chat-ended");
  var over = false, seen = {};
  // Words in the page's language, from the template (the catalogue): who wrote, and the two local failures.
  var WHO = {citizen: box.dataset.me, agent: box.dataset.agentWord, system: box.dataset.system};
  function post(url, body) {
    var data = new URLSearchParams(body || {});
    data.set("csrf_token", box.dataset.csrf);
    return fetch(url, {method: "POST", body: data, credentials: "same-origin",
                       headers: {"X-CSRF-Token": box.dataset.csrf}})
      .then(function (r) { return r.json().catch(function () { return {ok: false, error: box.dataset.failed.replace("{status}", r.status)}; }); })
      .catch(function () { return {ok: false, error: box.dataset.network}; });
  }
  function add(m) {
    if (seen[m.id]) { return; }
    seen[m.id] = true;
    var li = document.createElement("li");
    li.className = "chat-" + m.sender;
    li.setAttribute("data-sender", m.sender);
    var who = document.createElement("span");
    who.className = "chat-who";
    who.textContent = (WHO[m.sender] || m.sender) + (m.author ? " " + m.author : "") + " " + m.at.slice(11, 16);
    var body = document.createElement("p");
    body.textContent = m.text;
    li.appendChild(who);
    li.appendChild(body);
    log.appendChild(li);
    li.scrollIntoView({block: "end"});
  }
  function finish(number) {
    over = true;
    form.hidden = true;
    ended.hidden = false;
    document.getElementById("chat-number").textContent = number || "";
    status.textContent = box.dataset.ended;
  }
  var source = new EventSource(box.dataset.events);
  source.addEventListener("message", function (e) { add(JSON.parse(e.data)); });
  source.addEventListener("state", function (e) {
    var d = JSON.parse(e.data);
    if (d.state === "closed") { source.close(); finish(d.number); return; }
    status.textContent = d.state === "active" ? box.dataset.agent.replace("{agent}", d.agent)
      : box.dataset.waiting + " " + box.dataset.position + ": " + d.position;
  });
  source.addEventListener("error", function () { if (!over) { status.textContent = box.dataset.lost; } });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var value = text.value.trim();
    if (!value) { return; }
    post(box.dataset.send, {text: value}).then(function (d) {
      error.textContent = d.ok ? "" : d.error;
      if (d.ok) { text.value = ""; add(d.message); }
    });
  });
  text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById("chat-leave").addEventListener("click", function () {
    post(box.dataset.leave).then(function (d) {
      if (d.ok) { source.close(); finish(d.number); } else { error.textContent = d.error; }
    });
  });
  // Closing the page leaves the chat: what was written becomes a ticket (the server's time limit does the
  // same when this beacon is lost).
  window.addEventListener("pagehide", function () {
    if (over || !navigator.sendBeacon) { return; }
    var data = new FormData();
    data.append("csrf_token", box.dataset.csrf);
    navigator.sendBeacon(box.dataset.leave, data);
  });
}());
