// Team-lead console: the wallboard (totals, queues, agents with the actions that apply, chats) kept live by the
// server's event stream (/supervisor/stream: "board" is the whole console, "changes" the agent rows that changed
// with the totals and, when callers came or went, the queue rows). While the stream is down the page polls
// /supervisor/stats every 3 seconds and opens the stream again, waiting longer after each failure. Actions post
// in the background, the dangerous ones (data-confirm) after a confirmation.
(function () {
  var root = document.getElementById("console");
  if (!root || !window.fetch) { return; }
  var agentBody = document.getElementById("agent-rows");
  var message = document.getElementById("console-message");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function cell(text, cls) { return el("td", cls, text); }
  function empty(tbody, columns) {
    var tr = el("tr", "empty");
    var td = cell(tbody.dataset.empty || "");
    td.colSpan = columns;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  function say(text, bad) {
    if (!message) { return; }
    message.textContent = text;
    message.className = "console-message" + (bad ? " error" : "");
    message.hidden = !text;
  }
  function actionForm(agentId, act) {
    var form = el("form", "inline console-action");
    form.method = "post";
    form.setAttribute("action", agentBody.dataset.action);
    if (act.confirm) { form.dataset.confirm = act.confirm; }
    [["csrf_token", agentBody.dataset.csrf], ["agent_id", agentId]].forEach(function (pair) {
      var input = el("input");
      input.type = "hidden"; input.name = pair[0]; input.value = pair[1];
      form.appendChild(input);
    });
    var button = el("button", "button small" + (act.confirm ? " danger" : ""), act.label);
    button.type = "submit"; button.name = "action"; button.value = act.action;
    form.appendChild(button);
    return form;
  }
  // An agent's row: nine cells in the order of the table's head (the page's first rows are the server's).
  function agentRow(a) {
    var tr = el("tr");
    tr.dataset.agent = a.agent_id;
    for (var i = 0; i < 9; i++) { tr.appendChild(cell("")); }
    var badge = el("span");
    badge.setAttribute("data-testid", "agent-state");
    tr.children[1].appendChild(badge);
    fill(tr, a);
    return tr;
  }
  function text(node, value, cls) {
    value = value === undefined || value === null ? "" : String(value);
    if (node.textContent !== value) { node.textContent = value; }
    if (cls !== undefined && node.className !== cls) { node.className = cls; }
  }
  // Write an agent's figures into its row in place; the buttons are made again only when they changed
  // (making elements is what costs, with hundreds of agents changing at once).
  function fill(tr, a) {
    var c = tr.children;
    text(c[0], a.who);
    text(c[1].querySelector('[data-testid="agent-state"]'), a.state_label, "state-badge st-" + a.state);
    text(c[2], a.time, "num");
    text(c[3], a.phone, a.registered ? "muted" : "warn");
    text(c[4], a.caller);
    var help = c[5].firstElementChild;
    if (!a.help && help) { c[5].textContent = ""; }
    if (a.help && !help) { c[5].textContent = ""; c[5].appendChild(el("span", "state-badge help", a.help)); }
    if (a.help && help) { text(help, a.help); }
    text(c[6], a.calls_today, "num");
    text(c[7], a.desk);
    var actions = JSON.stringify(a.actions);
    if (tr.dataset.actions !== actions) {
      // A row keeps the forms it made, by action and wording: a state that comes back takes them again.
      var made = tr.forms || (tr.forms = {});
      c[8].textContent = "";
      c[8].className = "actions";
      a.actions.forEach(function (act) {
        var key = JSON.stringify(act);
        c[8].appendChild(made[key] || (made[key] = actionForm(a.agent_id, act)));
      });
      tr.dataset.actions = actions;
    }
  }
  function rows(id, items, columns, values) {
    var tbody = document.getElementById(id);
    if (!tbody || !items) { return; }
    tbody.textContent = "";
    if (!items.length) { empty(tbody, columns); return; }
    items.forEach(function (item) {
      var tr = el("tr");
      values(item).forEach(function (v) { tr.appendChild(cell(v[0], v[1])); });
      tbody.appendChild(tr);
    });
  }
  function totalsShown(totals) {
    Object.keys(totals).forEach(function (key) {
      var node = root.querySelector('[data-total="' + key + '"]');
      if (node) { node.textContent = String(totals[key]); }
    });
    var tile = root.querySelector('[data-testid="rate-tile"]');
    if (tile) { tile.classList.toggle("below-target", !!totals.below_target); }
  }
  function queuesShown(queueRows) {
    rows("queue-rows", queueRows, 8, function (q) {
      return [[q.name], [q.waiting, "num"], [q.longest_wait, "num"], [q.answered, "num"], [q.abandoned, "num"],
              [q.rate, "num"], [q.average_wait, "num"], [q.average_talk, "num"]];
    });
  }
  // The row holding the focused button (a click in progress) is left as it is; the next whole board brings it.
  function focusedRow() {
    var active = document.activeElement;
    return active && active !== document.body && agentBody.contains(active) ? active.closest("tr") : null;
  }
  function board(d) {
    var b = d.board;
    totalsShown(b.totals);
    queuesShown(b.queue_rows);
    rows("chat-queue-rows", d.chat_queues, 4, function (q) {
      return [[q.display_name], [q.waiting, "num"], [q.longest_wait_label || q.longest_wait, "num"], [q.in_chat, "num"]];
    });
    rows("chat-agent-rows", d.chat_agents, 4, function (a) {
      return [[a.operator_no + " " + a.name], [a.active, "num"], [a.offered, "num"], [a.capacity, "num"]];
    });
    if (!agentBody) { return; }
    var shown = agentBody.querySelectorAll("tr[data-agent]");
    var same = shown.length === b.agent_rows.length && b.agent_rows.every(function (a, i) {
      return shown[i].dataset.agent === String(a.agent_id);
    });
    var focused = focusedRow();
    if (same) {
      b.agent_rows.forEach(function (a, i) { put(a, shown[i], focused); });
    } else if (!focused) {  // agents came or went: the rows again, in the board's order
      agentBody.textContent = "";
      if (!b.agent_rows.length) { empty(agentBody, 9); }
      b.agent_rows.forEach(function (a) { put(a, null, null); });
    }
  }
  // Show one agent's row: only its time in state when nothing else changed (a whole board every few seconds
  // then touches one cell per agent), else its figures written in place, or a new row at the end.
  function put(a, shown, focused) {
    var copy = {};
    Object.keys(a).forEach(function (key) { if (key !== "time") { copy[key] = a[key]; } });
    var key = JSON.stringify(copy);
    if (shown && shown.dataset.key === key) {
      text(shown.children[2], a.time);
    } else if (shown && shown !== focused) {
      fill(shown, a);
      shown.dataset.key = key;
    } else if (!shown) {
      var none = agentBody.querySelector("tr.empty");
      if (none) { agentBody.removeChild(none); }
      var tr = agentRow(a);
      tr.dataset.key = key;
      agentBody.appendChild(tr);
    }
  }
  function changes(d) {
    totalsShown(d.totals);
    if (d.queue_rows) { queuesShown(d.queue_rows); }
    if (!agentBody) { return; }
    var focused = focusedRow(), shown = {};
    Array.prototype.forEach.call(agentBody.children, function (tr) { shown[tr.dataset.agent] = tr; });
    d.agent_rows.forEach(function (a) { put(a, shown[a.agent_id] || null, focused); });
  }
  function refresh() {
    fetch(root.dataset.stats, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(board).catch(function () { /* keep the last figures; try again next time */ });
  }

  // The live stream, and polling only while it is down.
  var source = null, poller = null, wait = 2000;
  function polling(on) {
    if (on && poller === null) { refresh(); poller = window.setInterval(refresh, 3000); }
    if (!on && poller !== null) { window.clearInterval(poller); poller = null; }
  }
  function live() { return source !== null && source.readyState === 1; }
  function read(handler) {
    return function (event) {
      try { handler(JSON.parse(event.data)); } catch (e) { /* a broken event: the next whole board mends it */ }
    };
  }
  function listen() {
    if (!window.EventSource || !root.dataset.stream) { polling(true); return; }
    source = new EventSource(root.dataset.stream);
    source.addEventListener("board", read(board));
    source.addEventListener("changes", read(changes));
    source.onopen = function () { wait = 2000; polling(false); };
    source.onerror = function () {
      polling(true);
      // EventSource reconnects by itself after a dropped stream (readyState 0); after a refusal (an error
      // status, the call process away behind a web worker) it gives up (2): open it again later.
      if (source.readyState === 2) {
        source.close();
        source = null;
        window.setTimeout(listen, wait);
        wait = Math.min(wait * 2, 30000);
      }
    };
  }
  if (agentBody) {
    agentBody.addEventListener("submit", function (event) {
      var form = event.target;
      event.preventDefault();
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
      var button = form.querySelector("button");
      var data = new FormData(form);
      data.append("action", button.value);
      button.disabled = true;
      // form.action would be the button named "action": read the attribute.
      fetch(form.getAttribute("action"), {method: "POST", body: data, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (reply) { say(reply.ok ? reply.message : reply.error, !reply.ok); })
        .catch(function () { say(root.dataset.failed || "", true); })
        .then(function () { button.disabled = false; button.blur(); if (!live()) { refresh(); } });
    });
  }
  listen();
}());
