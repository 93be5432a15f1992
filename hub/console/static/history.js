/*
 * Interaction Hub console, "view as of" (docs/history.md): the time an agent picks is read in
 * their own time zone, and the moment shown is written in it. Without this script the form
 * says, and the hub reads, UTC.
 */
(function () {
  "use strict";

  var zone = null;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { /* UTC it is */ }
  if (!zone) return;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localInput(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  document.querySelectorAll("input[data-browser-zone]").forEach(function (input) { input.value = zone; });
  document.querySelectorAll("[data-zone-name]").forEach(function (span) { span.textContent = zone; });
  document.querySelectorAll("input[type=datetime-local][data-utc]").forEach(function (input) {
    var d = new Date(input.getAttribute("data-utc"));
    if (input.getAttribute("data-utc") && !isNaN(d)) input.value = localInput(d);
  });
  document.querySelectorAll(".as-of-banner time[datetime], #timeline-title time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }) + " (" + zone + ")";
  });
})();
