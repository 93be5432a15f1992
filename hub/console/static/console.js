/*
 * Interaction Hub console: live timeline (Server-Sent Events), endless scrolling back, forms
 * posted without a reload (keyboard shortcuts: keys.js). Every page also works without it.
 */
(function () {
  "use strict";

  // Times: shown in the agent's own zone (the server writes UTC).
  function localTimes(root) {
    root.querySelectorAll(".item time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) t.textContent = d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    });
  }
  localTimes(document);

  // A live feed ends with an "error" event (with data, unlike a dropped connection's) once
  // the session is over: stop listening (a reconnect would only be sent to the sign-in page)
  // and say so, keeping whatever the agent was typing.
  function endsWithSession(source) {
    source.addEventListener("error", function (e) {
      if (!e.data) return;  // the connection dropped: EventSource reconnects by itself
      source.close();
      if (document.querySelector(".session-ended")) return;
      var note = document.createElement("p");
      note.className = "error session-ended";
      note.setAttribute("role", "alert");
      note.textContent = "Your session has ended, so this page no longer updates. ";
      var link = document.createElement("a");
      link.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      link.textContent = "Sign in again";
      note.appendChild(link);
      var main = document.getElementById("main");
      if (main) main.insertBefore(note, main.firstChild);
    });
  }

  var timeline = document.querySelector(".timeline");

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  }
  function atBottom() {
    return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  }
  function put(html, replaceOnly) {
    var content = fragment(html);
    var item = content.firstElementChild;
    if (!item) return;
    var existing = document.getElementById(item.id);
    if (existing) { existing.replaceWith(item); localTimes(item.parentNode || document); return; }
    if (replaceOnly) return;
    var follow = atBottom();
    timeline.appendChild(item);
    localTimes(timeline);
    if (follow) timeline.scrollTop = timeline.scrollHeight;
  }

  if (timeline) {
    timeline.scrollTop = timeline.scrollHeight;
    // Live: new items and changed delivery ticks.
    var live = timeline.getAttribute("data-live");
    if (live && window.EventSource) {
      var source = new EventSource(live);
      endsWithSession(source);
      source.addEventListener("item", function (e) { put(e.data, false); });
      source.addEventListener("update", function (e) { put(e.data, true); });
    }
    // Scrolling back: load the older page when its link comes into view (or is clicked).
    var older = document.querySelector("a.older");
    var loading = false;
    function loadOlder() {
      if (!older || loading) return;
      loading = true;
      var height = timeline.scrollHeight;
      fetch(older.href, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text().then(function (t) { return [t, r.headers.get("X-Older")]; }); })
        .then(function (result) {
          timeline.insertBefore(fragment(result[0]), timeline.firstChild);
          localTimes(timeline);
          timeline.scrollTop += timeline.scrollHeight - height;
          if (result[1]) { older.href = timeline.getAttribute("data-items") + "?before=" + encodeURIComponent(result[1]); }
          else { older.parentNode.remove(); older = null; }
        })
        .catch(function () { /* the link still works */ })
        .finally(function () { loading = false; });
    }
    if (older) {
      older.addEventListener("click", function (e) { e.preventDefault(); loadOlder(); });
      timeline.addEventListener("scroll", function () { if (timeline.scrollTop < 60) loadOlder(); });
    }
  }

  // The queue: its list reloads when the hub records something.
  var queue = document.querySelector(".queue-live");
  if (queue && window.EventSource) {
    var queueSource = new EventSource(queue.getAttribute("data-live"));
    endsWithSession(queueSource);
    queueSource.addEventListener("changed", function () {
      fetch(location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (!text) return;
          var fresh = new DOMParser().parseFromString(text, "text/html").querySelector(".queue-live");
          if (fresh) queue.innerHTML = fresh.innerHTML;
        })
        .catch(function () { /* the next change tries again */ });
    });
  }

  // Forms: posted in the background; a reply or note shows up through the live feed.
  document.querySelectorAll("form[data-enhance]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var error = form.querySelector(".form-error");
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin"
      }).then(function (r) {
        if (r.ok) {
          if (form.hasAttribute("data-reset")) {
            form.querySelector("textarea").value = "";
            var key = form.querySelector("input[name=key]");
            if (key) key.value = Math.random().toString(36).slice(2) + Date.now().toString(36);
            if (error) error.hidden = true;
          } else {
            location.reload();
          }
          return;
        }
        return r.json().then(function (body) {
          if (error) { error.textContent = body.message || (body.error && body.error.message) || ("Refused (" + r.status + ")"); error.hidden = false; }
        });
      }).catch(function () {
        if (error) { error.textContent = "The hub did not answer; try again."; error.hidden = false; }
      }).finally(function () { if (button) button.disabled = false; });
    });
  });
})();
