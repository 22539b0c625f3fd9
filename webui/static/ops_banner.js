// Alarm banner (team-lead console, centre desk): polls /alarms/shown every 5 seconds; each alarm has an
// acknowledge button (POST with the CSRF token). Text goes in with textContent only.
(function () {
  var root = document.getElementById("alarm-banner");
  if (!root || !window.fetch) { return; }
  var list = document.getElementById("alarm-items");
  function acknowledge(url) {
    var body = new URLSearchParams();
    body.set("csrf_token", root.dataset.csrf);
    fetch(url, {method: "POST", credentials: "same-origin", body: body,
                headers: {"Accept": "application/json"}}).then(refresh, refresh);
  }
  function item(a) {
    var li = document.createElement("li");
    li.className = "alarm alarm-" + a.severity + (a.cleared ? " alarm-cleared" : "");
    li.dataset.kind = a.kind;
    var text = document.createElement("span");
    text.textContent = "[" + a.label + "] " + a.text + " · " + a.first_seen + " – " + a.last_seen +
      (a.count > 1 ? " · " + a.count + " " + root.dataset.times : "") + (a.cleared ? " · " + root.dataset.cleared : "");
    li.appendChild(text);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.textContent = root.dataset.ack;
    button.addEventListener("click", function () { acknowledge(a.ack_url); });
    li.appendChild(button);
    return li;
  }
  function refresh() {
    fetch(root.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
      list.textContent = "";
      d.alarms.forEach(function (a) { list.appendChild(item(a)); });
      root.hidden = d.alarms.length === 0;
    }).catch(function () { /* keep the last banner; try again next time */ });
  }
  refresh();
  window.setInterval(refresh, 5000);
}());
