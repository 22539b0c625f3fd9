// Team-lead console: refresh queue, chat queue and agent figures every 3 seconds from /supervisor/stats.
(function () {
  var root = document.getElementById("console");
  if (!root || !window.fetch) { return; }
  function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }
  function dash(v) { return v === null || v === undefined ? "-" : String(v); }
  function refresh() {
    fetch(root.dataset.stats, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
      var body = document.getElementById("queue-rows");
      body.textContent = "";
      d.queues.forEach(function (q) {
        var tr = document.createElement("tr");
        [q.display_name, q.waiting, q.longest_wait, q.answered_today, q.abandoned_today, dash(q.answer_rate_15s),
         dash(q.average_wait), dash(q.average_talk)].forEach(function (v) { tr.appendChild(cell(String(v))); });
        body.appendChild(tr);
      });
      function rows(id, items, values) {
        var tbody = document.getElementById(id);
        if (!tbody || !items) { return; }
        tbody.textContent = "";
        items.forEach(function (item) {
          var tr = document.createElement("tr");
          values(item).forEach(function (v) { tr.appendChild(cell(String(v))); });
          tbody.appendChild(tr);
        });
      }
      rows("chat-queue-rows", d.chat_queues, function (q) { return [q.display_name, q.waiting, q.longest_wait, q.in_chat]; });
      rows("chat-agent-rows", d.chat_agents, function (a) { return [a.operator_no + " " + a.name, a.active, a.offered, a.capacity]; });
      d.agents.forEach(function (a) {
        var tr = document.querySelector('tr[data-agent="' + a.agent_id + '"]');
        if (!tr) { return; }
        tr.querySelector(".status").textContent = a.status + (a.break_reason ? " (" + a.break_reason + ")" : "");
        tr.querySelector(".state").textContent = a.state + (a.registered ? "" : " ⚠");
        tr.querySelector(".since").textContent = a.seconds_in_state;
        tr.querySelector(".help").textContent = a.help_requested ? "!" : "";
        tr.querySelector(".desk").textContent = a.desk;
      });
    }).catch(function () { /* keep the last figures; try again next time */ });
  }
  window.setInterval(refresh, 3000);
}());
