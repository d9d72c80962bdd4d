// Live balance for Luna's pages: the gauge follows /app/live (Server-Sent Events); a page that
// waits for a payment reloads when the balance stream moves. Everything else works without it.
(function () {
  "use strict";
  var gauge = document.getElementById("gauge");
  if (!gauge || !window.EventSource) { return; }
  var start = parseInt(gauge.getAttribute("data-version") || "0", 10);
  var status = document.getElementById("payment-status");
  var waiting = status && status.getAttribute("data-reload-on-change") === "1";
  var source = new EventSource("/app/live");
  source.addEventListener("balance", function (e) {
    var b;
    try { b = JSON.parse(e.data); } catch (err) { return; }
    var value = document.getElementById("energy-value");
    if (value) { value.textContent = String(b.current_energy); }
    var fill = document.getElementById("gauge-fill");
    var hold = document.getElementById("gauge-hold");
    var width = Math.max(0, Math.min(200, b.current_energy * 2));
    var held = Math.max(0, Math.min(200 - width, b.reserved_energy * 2));
    if (fill) { fill.setAttribute("width", String(width)); fill.classList.toggle("unlimited", !!b.unlimited); }
    if (hold) { hold.setAttribute("x", String(width)); hold.setAttribute("width", String(held)); }
    gauge.setAttribute("data-version", String(b.stream_version));
    if (waiting && b.stream_version > start) { source.close(); window.location.reload(); }
  });
})();
