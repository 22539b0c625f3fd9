// Team-lead console: refresh the wallboard (totals, queues, agents with the actions that apply, chats) every
// 3 seconds from /supervisor/stats without reloading; actions post in the background, the dangerous ones
// (data-confirm) after a confirmation.
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
  function agentRow(a) {
    var tr = el("tr");
    tr.dataset.agent = a.agent_id;
    tr.appendChild(cell(a.who));
    var state = cell("");
    var badge = el("span", "state-badge st-" + a.state, a.state_label);
    badge.dataset.testid = "agent-state";
    badge.setAttribute("data-testid", "agent-state");
    state.appendChild(badge);
    tr.appendChild(state);
    tr.appendChild(cell(a.time, "num"));
    tr.appendChild(cell(a.phone, a.registered ? "muted" : "warn"));
    tr.appendChild(cell(a.caller));
    var help = cell("");
    if (a.help) { help.appendChild(el("span", "state-badge help", a.help)); }
    tr.appendChild(help);
    tr.appendChild(cell(a.calls_today, "num"));
    tr.appendChild(cell(a.desk));
    var actions = cell("", "actions");
    a.actions.forEach(function (act) { actions.appendChild(actionForm(a.agent_id, act)); });
    tr.appendChild(actions);
    return tr;
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
  function refresh() {
    fetch(root.dataset.stats, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
      var board = d.board, totals = board.totals;
      Object.keys(totals).forEach(function (key) {
        var node = root.querySelector('[data-total="' + key + '"]');
        if (node) { node.textContent = String(totals[key]); }
      });
      var tile = root.querySelector('[data-testid="rate-tile"]');
      if (tile) { tile.classList.toggle("below-target", !!totals.below_target); }
      rows("queue-rows", board.queue_rows, 8, function (q) {
        return [[q.name], [q.waiting, "num"], [q.longest_wait, "num"], [q.answered, "num"], [q.abandoned, "num"],
                [q.rate, "num"], [q.average_wait, "num"], [q.average_talk, "num"]];
      });
      rows("chat-queue-rows", d.chat_queues, 4, function (q) {
        return [[q.display_name], [q.waiting, "num"], [q.longest_wait_label || q.longest_wait, "num"], [q.in_chat, "num"]];
      });
      rows("chat-agent-rows", d.chat_agents, 4, function (a) {
        return [[a.operator_no + " " + a.name], [a.active, "num"], [a.offered, "num"], [a.capacity, "num"]];
      });
      // Keep the agents' rows while a button in them has focus (a click in progress).
      if (agentBody && !agentBody.contains(document.activeElement)) {
        agentBody.textContent = "";
        if (!board.agent_rows.length) { empty(agentBody, 9); }
        board.agent_rows.forEach(function (a) { agentBody.appendChild(agentRow(a)); });
      }
    }).catch(function () { /* keep the last figures; try again next time */ });
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
        .then(function () { button.disabled = false; button.blur(); refresh(); });
    });
  }
  window.setInterval(refresh, 3000);
}());
