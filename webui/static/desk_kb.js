// Agent desk, knowledge panel: searches /kb/search.json (reviewed items only) beside the ticket form, lists
// the results with the query's words marked, shows an item's text and answers inline, and copies the text
// the agent picks into the ticket form's reply field or sends it into the chat shown. Every server text goes in through textContent.
(function () {
  var panel = document.getElementById("kb-panel");
  if (!panel || !panel.dataset.search || !window.fetch) { return; }
  var form = document.getElementById("kb-form");
  var query = document.getElementById("kb-q");
  var status = document.getElementById("kb-status");
  var list = document.getElementById("kb-results");
  var item = document.getElementById("kb-item");
  var words = panel.dataset;
  var asked = 0;  // only the newest request may fill the panel (answers can arrive out of order)

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }
  // [{text, hit}] pieces from the server: matched words in <mark>, the rest as text.
  function marked(tag, pieces, cls) {
    var node = el(tag, "", cls);
    (pieces || []).forEach(function (p) {
      node.appendChild(p.hit ? el("mark", p.text) : document.createTextNode(p.text));
    });
    return node;
  }
  function facts(row) {
    var parts = [];
    if (row.department) { parts.push(words.department + "：" + row.department); }
    if (row.category) { parts.push(row.category); }
    if (row.published) { parts.push(words.published + "：" + row.published); }
    return el("p", parts.join(" · "), "muted kb-facts");
  }
  function getJson(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.ok) { return r.json(); }
        // The server's own line when it sent one (the search index still being built), else the general one.
        return r.json().catch(function () { return {}; }).then(function (body) {
          var error = new Error(String(r.status));
          error.said = body && body.error;
          throw error;
        });
      });
  }
  function failed(error) { status.textContent = (error && error.said) || words.failed; }

  // Insert at the cursor of the reply field (or append on a new line), so several answers can be combined.
  function useInReply(text) {
    var reply = document.getElementById("tf-reply");
    if (!reply) { return; }
    var start = reply.selectionStart, end = reply.selectionEnd;
    if (document.activeElement !== reply || start === undefined) {
      start = end = reply.value.length;
      if (reply.value && !/\n$/.test(reply.value)) { text = "\n" + text; }
    }
    reply.setRangeText(text, start, end, "end");
    reply.dispatchEvent(new Event("input", {bubbles: true}));
    reply.focus();
  }
  function block(text, label) {
    var box = el("section", "", "kb-text");
    if (label) { box.appendChild(el("h4", label)); }
    box.appendChild(el("p", text, "kb-body"));
    var use = el("button", words.use, "button small");
    use.type = "button";
    use.setAttribute("data-testid", "kb-use");
    use.addEventListener("click", function () { useInReply(text); });
    box.appendChild(use);
    if (words.chat) {
      // Into the chat shown in the chat panel (desk_chat.js sends it, or says why not).
      var send = el("button", words.chat, "button small");
      send.type = "button";
      send.setAttribute("data-testid", "kb-chat");
      send.addEventListener("click", function () {
        document.dispatchEvent(new CustomEvent("desk:chat-text", {detail: text}));
      });
      box.appendChild(send);
    }
    return box;
  }

  function showItem(url) {
    var mine = ++asked;
    getJson(url + "?approved=1").then(function (row) {
      if (mine !== asked) { return; }
      item.replaceChildren();
      var back = el("button", words.back, "button small");
      back.type = "button";
      back.addEventListener("click", function () { item.hidden = true; list.hidden = false; });
      item.appendChild(back);
      item.appendChild(el("h3", row.title));
      item.appendChild(facts(row));
      if (row.content) { item.appendChild(block(row.content)); }
      row.answers.forEach(function (answer, n) { item.appendChild(block(answer.content, words.answer + " " + (n + 1))); });
      list.hidden = true;
      item.hidden = false;
    }).catch(function (error) { if (mine === asked) { failed(error); } });
  }

  function showResults(rows) {
    list.replaceChildren();
    item.hidden = true;
    list.hidden = false;
    status.textContent = rows.length ? "" : words.none;
    rows.forEach(function (row) {
      var li = el("li", "", "kb-result");
      var open = el("button", "", "kb-open");
      open.type = "button";
      open.setAttribute("data-testid", "kb-result");
      open.appendChild(marked("strong", row.title_marks));
      open.addEventListener("click", function () { showItem(row.data_url); });
      li.appendChild(open);
      li.appendChild(marked("p", row.snippet, "kb-snippet"));
      li.appendChild(facts(row));
      list.appendChild(li);
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();  // never leave the desk mid-call
    var q = query.value.trim();
    if (!q) { return; }
    var mine = ++asked;
    var url = words.search + "?approved=1&q=" + encodeURIComponent(q);
    getJson(url).then(function (rows) { if (mine === asked) { showResults(rows); } })
      .catch(function (error) { if (mine === asked) { failed(error); } });
  });
})();
