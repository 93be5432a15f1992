/*
 * The profile card, edited in place: "Edit profile" swaps the form into the card, Save posts it
 * in the background and swaps the saved card back, Escape or Cancel puts the card back as it
 * was; a refusal is shown next to the form, on the field it is about. Without this script the
 * link opens the form as a page and the form posts as usual (hub/console/profile.py).
 */
(function () {
  "use strict";

  var card = document.getElementById("profile-card");
  if (!card || !window.fetch) return;
  var before = null;  // the card's markup while its form is open (Cancel puts it back)

  function send(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = { "X-Requested-With": "fetch" };
    return fetch(url, options);
  }

  function swap(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.firstElementChild;
    if (!fresh) return;
    card.replaceWith(fresh);
    card = fresh;
    bind();
  }

  function focusEdit() {
    var edit = card.querySelector("[data-profile-edit]");
    if (edit) edit.focus();
  }

  function open(url) {
    send(url)
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        before = card.outerHTML;
        swap(html);
        var first = card.querySelector("input:not([type=hidden]), select");
        if (first) first.focus();
      })
      .catch(function () { location.href = url; });  // the page of the form still works
  }

  function cancel() {
    if (before === null) return;
    swap(before);
    before = null;
    focusEdit();
  }

  function refuse(form, body, status) {
    var error = form.querySelector(".form-error");
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var field = body && body.field ? form.querySelector("[name='" + fieldName(body.field) + "']") : null;
    if (error) {
      error.textContent = (body && body.message) || ("Refused (" + status + ")");
      error.hidden = false;
    }
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", "profile-error");
      field.focus();
    } else if (error) {
      error.focus();
    }
  }

  function fieldName(field) {
    // The hub names attributes "attributes.<key>"; their inputs are "attr.<key>".
    return field.indexOf("attributes.") === 0 ? "attr." + field.slice(11) : field;
  }

  function submit(e) {
    e.preventDefault();
    var form = e.target;
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    send(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)) })
      .then(function (r) {
        if (r.status === 204) { location.reload(); return; }
        if (r.ok) {
          return r.text().then(function (html) { swap(html); before = null; focusEdit(); });
        }
        return r.json().then(function (body) { refuse(form, body, r.status); });
      })
      .catch(function () { refuse(form, { message: "The hub did not answer; try again." }, 0); })
      .finally(function () { if (button) button.disabled = false; });
  }

  function bind() {
    var edit = card.querySelector("[data-profile-edit]");
    if (edit) {
      edit.addEventListener("click", function (e) { e.preventDefault(); open(edit.href); });
    }
    var form = card.querySelector("form.profile-form");
    if (!form) return;
    form.addEventListener("submit", submit);
    form.addEventListener("keydown", function (e) { if (e.key === "Escape") cancel(); });
    var back = form.querySelector("[data-profile-cancel]");
    if (back) back.addEventListener("click", function (e) { e.preventDefault(); cancel(); });
  }

  bind();
})();
