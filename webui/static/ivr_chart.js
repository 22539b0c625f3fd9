// Zoom and fit for the IVR chart (/admin/ivr/): buttons scale the server-drawn SVG; no inline script (CSP).
(function () {
  "use strict";
  var box = document.querySelector("[data-testid=ivr-chart]");
  var svg = box && box.querySelector("svg");
  if (!svg) { return; }
  var width = parseFloat(svg.getAttribute("width")), height = parseFloat(svg.getAttribute("height"));
  var scale = 1;
  function apply() {
    svg.setAttribute("width", Math.round(width * scale));
    svg.setAttribute("height", Math.round(height * scale));
  }
  function fit() {
    scale = Math.min(1, (box.clientWidth - 4) / width);
    apply();
  }
  document.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () {
      var how = button.getAttribute("data-zoom");
      if (how === "in") { scale = Math.min(scale * 1.25, 4); apply(); }
      else if (how === "out") { scale = Math.max(scale / 1.25, 0.1); apply(); }
      else if (how === "fit") { fit(); }
      else { scale = 1; apply(); }
    });
  });
  // A big tree starts as wide as the box but no smaller than readable (the box scrolls); "fit" shows it whole.
  if (width > box.clientWidth) { scale = Math.max(0.7, (box.clientWidth - 4) / width); apply(); }
})();
