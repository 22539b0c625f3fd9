// Forms on the staff pages (issue 13 item 6), loaded by base.html (CSP: static files only).
// Character counters: every textarea or input with data-limit shows "used / limit" beside it, red once the
// text is over; nothing is ever cut (a maxlength attribute silently truncates pasted text) and the server
// refuses an over-long text with a message naming both numbers. Counted as the server counts: code points
// of the text without surrounding blanks, CRLF as one.
// Folding: an element with data-fold taller than FOLD_HEIGHT shows its first lines and a button (labelled
// from data-more / data-less, in the page's language) that shows it all; without script it is all shown.
// The contact a reply needs: a select with data-requires='{"phone": "field-id", ...}' makes the field its
// chosen option names required (a reply by phone needs the number); the server refuses it all the same.
// Confirmation: a form with data-confirm asks first (a seat's password reset).
"use strict";
(function () {
  function attach(field) {
    var limit = parseInt(field.getAttribute("data-limit"), 10);
    if (!(limit > 0) || field.hasAttribute("data-counted")) { return; }
    field.setAttribute("data-counted", "");
    var out = field.id ? document.querySelector('[data-counter-for="' + field.id + '"]') : null;
    if (!out) {
      out = document.createElement("span");
      out.className = "counter";
      out.setAttribute("aria-live", "polite");
      out.setAttribute("data-testid", "counter");
      field.insertAdjacentElement("afterend", out);
    }
    if (!out.id) { out.id = (field.id || field.name || "field") + "-counter"; }
    var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf(out.id) < 0) { described.push(out.id); }
    field.setAttribute("aria-describedby", described.join(" "));
    function show() {
      var used = Array.from(field.value.replace(/\r\n/g, "\n").trim()).length;
      out.textContent = used + " / " + limit;
      var over = used > limit;
      out.classList.toggle("over", over);
      if (over) { field.setAttribute("aria-invalid", "true"); } else { field.removeAttribute("aria-invalid"); }
    }
    field.addEventListener("input", show);
    show();
  }
  function requires(select) {
    var map;
    try { map = JSON.parse(select.getAttribute("data-requires")); } catch (e) { return; }
    var ids = Object.keys(map).map(function (k) { return map[k]; });
    function apply() {
      ids.forEach(function (id) {
        var field = document.getElementById(id);
        if (field) { field.required = map[select.value] === id; }
      });
    }
    select.addEventListener("change", apply);
    apply();
  }
  var FOLD_HEIGHT = 240;  // px: about twelve lines of ticket text
  function fold(box) {
    if (box.hasAttribute("data-folded-ready") || box.scrollHeight <= FOLD_HEIGHT + 60) { return; }
    box.setAttribute("data-folded-ready", "");
    box.classList.add("folded");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button small fold-toggle";
    button.setAttribute("data-testid", "fold-toggle");
    button.setAttribute("aria-expanded", "false");
    if (box.id) { button.setAttribute("aria-controls", box.id); }
    button.textContent = box.getAttribute("data-more") || "…";
    button.addEventListener("click", function () {
      var open = box.classList.toggle("folded") === false;
      button.setAttribute("aria-expanded", open ? "true" : "false");
      button.textContent = open ? (box.getAttribute("data-less") || "…") : (box.getAttribute("data-more") || "…");
    });
    box.insertAdjacentElement("afterend", button);
  }
  // A form with data-confirm (outside the console, whose script asks itself) is sent only once confirmed.
  function confirmFirst(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  }
  function start() {
    document.querySelectorAll("form[data-confirm]:not(.console-action)").forEach(confirmFirst);
    document.querySelectorAll("[data-fold]").forEach(fold);
    document.querySelectorAll("textarea[data-limit], input[data-limit]").forEach(attach);
    document.querySelectorAll("select[data-requires]").forEach(requires);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
