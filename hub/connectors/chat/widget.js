/*
 * Interaction Hub web chat widget. Plain JavaScript, no build step, no external requests.
 *
 *   <script src="https://hub.example.com/chat/widget.js" data-title="Chat with us" async></script>
 *
 * It keeps a signed visitor token in localStorage, so a returning visitor is recognised and
 * sees the conversation so far; a lost connection resumes after the last message shown.
 * Messages not yet acknowledged are resent on reconnect with the same client id; the hub
 * records each once. A survey's question comes with its answer buttons; a click sends the score
 * as the visitor's message, marked as a button's answer (choice: true).
 * Protocol: hub/api/routes/chat.py and docs/chat.md.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.HubChat) return;
  var base = new URL(script.src, location.href);
  var socketUrl = base.origin.replace(/^http/, "ws") + "/chat/ws";
  var storageKey = "hub-chat:" + base.origin;
  var title = script.getAttribute("data-title") || "Chat with us";

  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey) || "{}"); } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storageKey, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  var state = load();            // {token}
  var seq = 0;                   // the last message shown on this page
  var unacked = {};              // client_id -> message frame, resent on reconnect
  var shown = {};                // message_id -> element
  var surveys = [];              // the answer buttons shown, oldest first
  var socket = null;
  var retry = 1000;

  // -- the page parts ---------------------------------------------------------------------
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }
  var css = [
    ".hubchat{position:fixed;right:16px;bottom:16px;z-index:2147483000;font:15px/1.4 system-ui,sans-serif;color:#111;display:flex;flex-direction:column;align-items:flex-end}",
    ".hubchat [hidden]{display:none!important}",
    ".hubchat button{font:inherit;cursor:pointer}",
    ".hubchat-toggle{background:#1d4ed8;color:#fff;border:0;border-radius:24px;padding:10px 18px}",
    ".hubchat-toggle:focus-visible,.hubchat button:focus-visible,.hubchat input:focus-visible,.hubchat textarea:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}",
    ".hubchat-panel{width:min(360px,calc(100vw - 32px));height:min(520px,calc(100vh - 90px));background:#fff;border:1px solid #888;border-radius:10px;display:flex;flex-direction:column;margin-bottom:8px;box-shadow:0 4px 18px rgba(0,0,0,.2)}",
    ".hubchat-head{display:flex;justify-content:space-between;align-items:center;padding:8px 12px;background:#1d4ed8;color:#fff;border-radius:10px 10px 0 0}",
    ".hubchat-head h2{font-size:16px;margin:0}",
    ".hubchat-head button{background:none;border:0;color:#fff;font-size:20px}",
    ".hubchat-log{flex:1;overflow-y:auto;padding:8px 12px}",
    ".hubchat-log ol{list-style:none;margin:0;padding:0}",
    ".hubchat-log li{margin:6px 0;padding:6px 10px;border-radius:8px;max-width:85%;white-space:pre-wrap;word-wrap:break-word}",
    ".hubchat-in{background:#dbeafe;margin-left:auto!important}",
    ".hubchat-out{background:#f3f4f6}",
    ".hubchat-pending{opacity:.65}",
    ".hubchat-failed{outline:2px solid #b91c1c}",
    ".hubchat form{display:flex;gap:6px;padding:6px 12px;border-top:1px solid #ddd;align-items:flex-end}",
    ".hubchat label{font-size:13px;display:block}",
    ".hubchat .hubchat-grow{flex:1}",
    ".hubchat textarea,.hubchat input{width:100%;box-sizing:border-box;font:inherit;border:1px solid #666;border-radius:6px;padding:6px}",
    ".hubchat form button{background:#1d4ed8;color:#fff;border:0;border-radius:6px;padding:7px 12px}",
    ".hubchat-status{font-size:13px;color:#444;padding:2px 12px 8px;min-height:1em}",
    ".hubchat-choices{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px;white-space:normal}",
    ".hubchat-log li.hubchat-survey{max-width:100%}",
    ".hubchat-choices button{min-width:36px;min-height:40px;padding:0 6px;background:#fff;color:#1d4ed8;border:1px solid #1d4ed8;border-radius:6px}",
    ".hubchat-choices button:disabled{cursor:default;color:#555;border-color:#999;background:#f3f4f6}",
    ".hubchat-choices button[aria-pressed=true]{background:#1d4ed8;color:#fff;border-color:#1d4ed8}"
  ].join("\n");

  var root = el("div", { "class": "hubchat" });
  root.appendChild(el("style", {}, css));
  var panel = el("section", { "class": "hubchat-panel", "aria-label": title, hidden: "" });
  var head = el("div", { "class": "hubchat-head" });
  head.appendChild(el("h2", {}, title));
  var closeButton = el("button", { type: "button", "aria-label": "Close the chat" }, "\u00d7");
  head.appendChild(closeButton);
  panel.appendChild(head);
  // The log region holds the list (a list's own role would be lost to "log", and its items
  // would be list items outside a list).
  var log = el("div", { "class": "hubchat-log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  var list = el("ol");
  log.appendChild(list);
  panel.appendChild(log);

  function form(id, labelText, field, buttonText) {
    var f = el("form", { "class": "hubchat-" + id });
    var wrap = el("div", { "class": "hubchat-grow" });
    field.id = "hubchat-" + id + "-field";
    wrap.appendChild(el("label", { "for": field.id }, labelText));
    wrap.appendChild(field);
    f.appendChild(wrap);
    f.appendChild(el("button", { type: "submit" }, buttonText));
    panel.appendChild(f);
    return f;
  }
  var text = el("textarea", { rows: "2", maxlength: "4000", required: "" });
  var messageForm = form("message", "Message", text, "Send");
  var email = el("input", { type: "email", autocomplete: "email", required: "" });
  var emailForm = form("email", "Your email, so we can reach you", email, "Save");
  var code = el("input", { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", required: "" });
  var codeForm = form("code", "The code we emailed you", code, "Verify");
  codeForm.hidden = true;
  var status = el("p", { "class": "hubchat-status", role: "status" });
  panel.appendChild(status);
  var toggle = el("button", { type: "button", "class": "hubchat-toggle", "aria-expanded": "false" }, title);
  root.appendChild(panel);
  root.appendChild(toggle);

  function open() {
    panel.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    text.focus();
    connect();
  }
  function close() {
    panel.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }
  toggle.addEventListener("click", function () { panel.hidden ? open() : close(); });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  text.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); messageForm.requestSubmit(); }
  });

  // -- messages ---------------------------------------------------------------------------
  function bubble(key, direction, body, pending) {
    var item = shown[key];
    if (!item) {
      item = el("li", { "class": direction === "inbound" ? "hubchat-in" : "hubchat-out" });
      item.textContent = body;
      list.appendChild(item);
      shown[key] = item;
      log.scrollTop = log.scrollHeight;
    }
    item.classList.toggle("hubchat-pending", !!pending);
    return item;
  }
  function newClientId() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function say(body, choice) {
    var clientId = newClientId();
    var frame = { type: "message", client_id: clientId, text: body };
    if (choice) frame.choice = true;  // a survey button's answer
    unacked[clientId] = frame;
    bubble("c:" + clientId, "inbound", body, true);
    send(frame);
  }

  // -- survey buttons ---------------------------------------------------------------------
  // Only the latest question's buttons can be used (a score answers the latest open survey);
  // they are disabled once one is clicked here or in another tab of the visitor.
  function closeSurveys() {
    surveys.forEach(function (group) {
      Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = true; });
    });
  }
  function surveyButtons(item, survey) {
    if (item.querySelector(".hubchat-choices")) return;
    closeSurveys();
    var group = el("div", {
      "class": "hubchat-choices", role: "group",
      "aria-label": "Your rating, from " + survey.min + " to " + survey.max
    });
    survey.choices.forEach(function (choice) {
      var button = el("button", {
        type: "button", "aria-pressed": "false",
        "aria-label": choice.label + " out of " + survey.max
      }, choice.label);
      button.addEventListener("click", function () {
        closeSurveys();
        button.setAttribute("aria-pressed", "true");
        text.focus();  // the next message is the score's comment
        say(String(choice.value), true);
      });
      group.appendChild(button);
    });
    item.appendChild(group);
    item.classList.add("hubchat-survey");  // the whole width: eleven NPS buttons in two rows
    surveys.push(group);
    log.scrollTop = log.scrollHeight;
  }
  messageForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = text.value.trim();
    if (!body) return;
    text.value = "";
    say(body);
  });
  emailForm.addEventListener("submit", function (e) {
    e.preventDefault();
    if (send({ type: "identify", email: email.value.trim() })) status.textContent = "Saving\u2026";
  });
  codeForm.addEventListener("submit", function (e) {
    e.preventDefault();
    send({ type: "verify", code: code.value.trim() });
  });

  function onFrame(frame) {
    if (frame.type === "welcome") {
      state.token = frame.token;
      save();
      retry = 1000;
      status.textContent = "";
      if (frame.email) { emailForm.hidden = true; codeForm.hidden = true; }
      Object.keys(unacked).forEach(function (id) { send(unacked[id]); });
    } else if (frame.type === "message") {
      var key = frame.client_id ? "c:" + frame.client_id : "m:" + frame.message_id;
      if (!shown[key] && shown["m:" + frame.message_id]) key = "m:" + frame.message_id;
      bubble(key, frame.direction, frame.text || "", false);
      shown["m:" + frame.message_id] = shown[key];
      if (frame.direction === "outbound" && frame.survey) surveyButtons(shown[key], frame.survey);
      if (frame.direction === "inbound" && frame.choice) closeSurveys();
      if (frame.seq > seq) seq = frame.seq;
      if (frame.direction === "outbound") send({ type: "received", message_id: frame.message_id });
    } else if (frame.type === "ack") {
      delete unacked[frame.client_id];
      var item = shown["c:" + frame.client_id];
      if (item) { item.classList.remove("hubchat-pending"); shown["m:" + frame.message_id] = item; }
    } else if (frame.type === "identity") {
      if (frame.verified) {
        codeForm.hidden = true;
        emailForm.hidden = true;
        status.textContent = "Thank you: " + frame.email + " is confirmed.";
      } else {
        codeForm.hidden = !frame.code_sent;
        status.textContent = frame.code_sent
          ? "We emailed a code to " + frame.email + "."
          : "Thank you, we will answer at " + frame.email + " too.";
        if (frame.code_sent) code.focus();
      }
    } else if (frame.type === "error") {
      status.textContent = frame.message;
      onError(frame);
    }
  }
  function onError(frame) {
    var id = frame.client_id;
    if (frame.code === "rate_limited") {
      var wait = Math.max(1, frame.retry_after || 5) * 1000;
      if (id && unacked[id] !== undefined) {
        // The hub took nothing: the same client id again once the budget allows.
        setTimeout(function () {
          if (unacked[id] !== undefined) send(unacked[id]);
        }, wait);
      } else {
        retry = Math.max(retry, wait);  // refused at hello: the socket closes, reconnect later
      }
    } else if (id && !frame.retryable && unacked[id] !== undefined) {
      // Refused for good (invalid_text, invalid_message): not resent; the bubble says so.
      delete unacked[id];
      var item = shown["c:" + id];
      if (item) {
        item.classList.remove("hubchat-pending");
        item.classList.add("hubchat-failed");
        item.title = frame.message;
      }
    }
  }

  // -- the connection ---------------------------------------------------------------------
  function connect() {
    if (socket && socket.readyState <= WebSocket.OPEN) return;
    socket = new WebSocket(socketUrl);
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({
        type: "hello", token: state.token || null, after: seq, language: navigator.language || null,
        // Where the visitor came from (utm_* of this page, the referrer): docs/profile.md.
        page: location.href, referrer: document.referrer || null
      }));
    });
    socket.addEventListener("message", function (e) {
      try { onFrame(JSON.parse(e.data)); } catch (err) { /* a frame this version does not know */ }
    });
    socket.addEventListener("close", function () {
      status.textContent = "Reconnecting\u2026";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  }

  function start() {
    document.body.appendChild(root);
    if (state.token) connect();  // a returning visitor sees replies that came meanwhile
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  window.HubChat = { open: open, close: close, send: say };
})();
