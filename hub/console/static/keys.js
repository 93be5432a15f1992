/*
 * Interaction Hub console: keyboard shortcuts. "/" search, "j"/"k" through the queue (Enter
 * opens), "r" reply, "n" note, "e" resolve on a customer page, "?" lists them. None fires while
 * typing in a field or with Ctrl, Alt or Meta held; each only focuses or submits what a mouse
 * would, so the server's rules (and CSRF) apply as they do to a click.
 */
(function () {
  "use strict";

  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  // The queue: the row holding focus is the current one; j/k focus the next or previous row's
  // link, so Enter opens it and the focus ring shows where the agent is.
  function queueLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr td:first-child a"));
  }
  var lastRow = null;  // the href of the row last moved to: kept when the live queue redraws
  function move(step) {
    var links = queueLinks();
    if (!links.length) return false;
    var at = links.indexOf(document.activeElement);
    if (at < 0 && lastRow) at = links.map(function (a) { return a.getAttribute("href"); }).indexOf(lastRow);
    var next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), links.length - 1);
    links[next].focus();
    lastRow = links[next].getAttribute("href");
    return true;
  }

  // A customer page: the current conversation is the one holding focus, else the one the
  // address points at (the queue links to #c-<id>), else the first.
  function currentConversation() {
    var focused = document.activeElement && document.activeElement.closest("article.conversation");
    if (focused) return focused;
    var target = location.hash.length > 1 && document.getElementById(location.hash.slice(1));
    if (target && target.matches("article.conversation")) return target;
    return document.querySelector("article.conversation");
  }
  function focusBox(formClass) {
    var conversation = currentConversation();
    var box = conversation && conversation.querySelector("form." + formClass + " textarea");
    if (!box) return false;
    if (box.disabled) box = conversation.querySelector("form." + formClass + " select") || box;
    box.focus();
    return true;
  }
  function resolve() {
    var conversation = currentConversation();
    var status = conversation && conversation.querySelector("form input[name=status][value=resolved]");
    if (!status) return false;
    status.form.requestSubmit();  // through the form's own handler: CSRF, the server's rules
    return true;
  }

  function help() {
    var dialog = document.getElementById("keys-help");
    if (!dialog || dialog.open) return false;
    dialog.showModal();  // modal: Escape closes it and focus returns where it was
    return true;
  }
  document.querySelectorAll("[data-keys-help]").forEach(function (button) {
    button.addEventListener("click", help);
  });
  var close = document.querySelector("#keys-help .close");
  if (close) close.addEventListener("click", function () { close.closest("dialog").close(); });

  var actions = {
    "/": function () {
      var search = document.getElementById("search-q");
      if (search) search.focus();
      return !!search;
    },
    "j": function () { return move(1); },
    "k": function () { return move(-1); },
    "r": function () { return focusBox("reply"); },
    "n": function () { return focusBox("note"); },
    "e": resolve,
    "?": help
  };

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey || e.defaultPrevented || typing(e.target)) return;
    if (document.querySelector("dialog[open]")) return;
    var action = actions[e.key];
    if (action && action()) e.preventDefault();
  });
})();
