// Agent desk, chat panel: the agent's chat capacity, the chats offered to them and those they hold (server-
// sent events from /desk/chat/events), messages both ways, knowledge answers sent into the chat shown
// ("desk:chat-text" from desk_kb.js), the close; the chat shown fills the ticket form (its chat_id links the
// saved ticket to the chat). Every server text goes in through textContent.
(function () {
  var panel = document.getElementById("chat-panel");
  if (!panel || !window.EventSource || !window.fetch) { return; }
  var words = panel.dataset;
  var list = document.getElementById("chat-list"), none = document.getElementById("chat-none");
  var error = document.getElementById("chat-error"), capacity = document.getElementById("chat-capacity");
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var cards = {}, current = null;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }
  function post(url, body) {
    return fetch(url, {method: "POST", body: new URLSearchParams(body || {}), credentials: "same-origin",
                       headers: {"X-CSRF-Token": token}})
      .then(function (r) { return r.json().catch(function () { return {ok: false, error: "请求失败 / request failed (" + r.status + ")"}; }); })
      .catch(function () { return {ok: false, error: "网络错误 / network error"}; });
  }
  function url(id, what) { return words.base + id + "/" + what; }
  function field(id, value) { var f = document.getElementById(id); if (f) { f.value = value || ""; } }
  function show(id) {
    current = id;
    Object.keys(cards).forEach(function (k) { cards[k].card.classList.toggle("current", String(k) === String(id)); });
    var c = cards[id];
    field("tf-chat", c && c.data.state === "active" ? id : "");
    if (c) { field("tf-phone", c.data.phone); field("tf-name", c.data.name); }
  }
  function addMessage(m) {
    var c = cards[m.chat];
    if (!c || c.seen[m.id]) { return; }
    c.seen[m.id] = true;
    var li = el("li", "", "chat-" + m.sender);
    li.setAttribute("data-sender", m.sender);
    li.appendChild(el("span", (m.sender === "citizen" ? "市民" : m.sender === "agent" ? "我" : "系统") + " " + m.at.slice(11, 16), "chat-who"));
    li.appendChild(el("p", m.text));
    c.log.appendChild(li);
    c.log.scrollTop = c.log.scrollHeight;
  }
  function card(data) {
    var c = cards[data.id];
    if (!c) {
      var box = el("article", "", "chat-card");
      box.setAttribute("data-testid", "desk-chat");
      box.dataset.chat = data.id;
      var head = el("h3", "");
      var history = el("ul", "", "chat-history");
      history.setAttribute("data-testid", "desk-chat-history");
      var log = el("ol", "", "chat-log");
      log.setAttribute("data-testid", "desk-chat-log");
      var text = el("textarea", "");
      text.rows = 2;
      text.setAttribute("data-testid", "desk-chat-text");
      var send = el("button", words.send, "button small");
      send.setAttribute("data-testid", "desk-chat-send");
      var answer = el("button", words.answer, "button small");
      answer.setAttribute("data-testid", "desk-chat-answer");
      var close = el("button", words.close, "button small");
      close.setAttribute("data-testid", "desk-chat-close");
      [send, answer, close].forEach(function (b) { b.type = "button"; });
      var status = el("p", "", "muted");
      status.setAttribute("data-testid", "desk-chat-status");
      [head, status, history, log, text, send, answer, close].forEach(function (n) { box.appendChild(n); });
      c = cards[data.id] = {card: box, head: head, history: history, log: log, text: text, send: send,
                            answer: answer, close: close, status: status, seen: {}, data: data};
      box.addEventListener("click", function () { show(data.id); });
      answer.addEventListener("click", function () {
        post(url(data.id, "answer")).then(function (d) {
          error.textContent = d.ok ? "" : d.error;
          if (d.ok) { card(d.chat); show(data.id); }
        });
      });
      function sendText(value) {
        value = (value || "").trim();
        if (!value) { return; }
        post(url(data.id, "send"), {text: value}).then(function (d) {
          error.textContent = d.ok ? "" : d.error;
          if (d.ok) { text.value = ""; d.message.chat = data.id; addMessage(d.message); }
        });
      }
      c.sendText = sendText;
      send.addEventListener("click", function () { sendText(text.value); });
      text.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendText(text.value); }
      });
      close.addEventListener("click", function () {
        post(url(data.id, "close")).then(function (d) {
          error.textContent = d.ok ? "" : d.error;
          if (d.ok) { ended({chat: data.id, ticket: d.ticket, reason: "agent"}); }
        });
      });
      list.appendChild(box);
      if (current === null) { show(data.id); }
    }
    c.data = data;
    c.head.textContent = data.topic + " · " + (data.name || "") + " " + (data.phone || "");
    c.status.textContent = data.state === "offered" ? words.offered : (data.ticket ? "工单 / ticket " + data.ticket : "");
    c.answer.hidden = data.state !== "offered";
    c.send.hidden = c.text.hidden = data.state !== "active";
    c.close.hidden = data.state !== "active";
    c.history.replaceChildren();
    if (data.history && data.history.tickets.length) {
      c.history.appendChild(el("li", words.history + (data.history.citizen ? " · " + data.history.citizen.name : ""), "muted"));
      data.history.tickets.forEach(function (t) { c.history.appendChild(el("li", t.number + " " + t.title + " (" + t.status + ")")); });
    }
    if (String(current) === String(data.id)) { show(data.id); }
    none.hidden = true;
    return c;
  }
  function ended(d) {
    var c = cards[d.chat];
    if (!c) { return; }
    c.data.state = "closed";
    c.answer.hidden = c.send.hidden = c.text.hidden = c.close.hidden = true;
    c.card.classList.add("ended");
    c.status.textContent = "已结束 / ended" + (d.ticket ? " · 工单 / ticket " + d.ticket : "");
    if (String(current) === String(d.chat)) { field("tf-chat", ""); }
  }
  function listing(chats) {
    var open = {};
    chats.forEach(function (data) { open[data.id] = true; card(data); });
    Object.keys(cards).forEach(function (id) { if (!open[id] && cards[id].data.state !== "closed") { ended({chat: id}); } });
    none.hidden = chats.length > 0 || Object.keys(cards).length > 0;
  }
  fetch(words.state, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
    capacity.value = d.capacity;
    (d.chats || []).forEach(function (data) {
      card(data);
      (data.messages || []).forEach(function (m) { m.chat = data.id; addMessage(m); });
    });
  }).catch(function () {});
  document.getElementById("chat-capacity-save").addEventListener("click", function () {
    post(words.capacity, {capacity: capacity.value}).then(function (d) {
      error.textContent = d.ok ? "" : d.error;
      if (d.ok) { capacity.value = d.capacity; }
    });
  });
  document.addEventListener("desk:chat-text", function (e) {
    var c = cards[current];
    if (!c || c.data.state !== "active") { error.textContent = "请先选择进行中的交谈 / choose an active chat first"; return; }
    c.sendText(e.detail);
  });
  var source = new EventSource(words.events);
  source.addEventListener("chats", function (e) { listing(JSON.parse(e.data)); });
  source.addEventListener("message", function (e) { addMessage(JSON.parse(e.data)); });
  source.addEventListener("ended", function (e) { ended(JSON.parse(e.data)); });
}());
