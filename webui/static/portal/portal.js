// The public website's only script (CSP: static files only): a live character count that never cuts text
// (a maxlength attribute would silently truncate pasted text) and a new CAPTCHA picture on request.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("textarea[data-limit]").forEach(function (area) {
    var limit = parseInt(area.getAttribute("data-limit"), 10);
    var out = document.querySelector('[data-counter-for="' + area.id + '"]');
    if (!out) { return; }
    var show = function () {
      var used = Array.from(area.value.replace(/\r\n/g, "\n").trim()).length;
      out.textContent = used + " / " + limit;
      out.classList.toggle("over", used > limit);
    };
    area.addEventListener("input", show);
    show();
  });
  document.querySelectorAll("[data-refresh]").forEach(function (button) {
    button.addEventListener("click", function () {
      var img = document.getElementById(button.getAttribute("data-refresh"));
      if (img) { img.src = img.src.split("?")[0] + "?r=" + Date.now(); }
    });
  });
});
