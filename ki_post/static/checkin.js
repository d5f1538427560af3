/* Einlass: filter the server-rendered list while typing (without JavaScript the search form asks the server).
   What was typed and „nur Zusagen“ go along with every tick (hidden fields), so the list after the reload is
   the list the staff were looking at. */
(function () {
  "use strict";
  var input = document.querySelector("[data-checkin-search]");
  if (!input) { return; }
  var only = document.querySelector("[data-checkin-only]");
  var entries = Array.prototype.slice.call(document.querySelectorAll(".checkin-entry"));
  var count = document.getElementById("einlass-treffer");
  var hiddenNote = document.getElementById("einlass-ausgeblendet");
  var none = document.getElementById("einlass-keine");
  var timer = null;
  function persons(n, one, many) {
    return n === 1 ? "1 " + one : n.toLocaleString("de-DE") + " " + many;
  }
  function keep() {
    document.querySelectorAll("[data-keeps-search]").forEach(function (field) { field.value = input.value.trim(); });
    document.querySelectorAll("[data-keeps-only]").forEach(function (field) {
      field.value = only && only.checked ? "zusagen" : "";
    });
  }
  function filter() {
    var needle = input.value.trim().toLowerCase();
    var onlyConfirmed = only && only.checked;
    var shown = 0;
    var left = 0;
    entries.forEach(function (entry) {
      var match = !needle || entry.getAttribute("data-search").indexOf(needle) !== -1;
      var unconfirmed = entry.hasAttribute("data-unconfirmed");
      if (match && onlyConfirmed && unconfirmed) { left += 1; match = false; }
      entry.hidden = !match;
      if (match) { shown += 1; }
    });
    if (count) { count.textContent = persons(shown, "Person", "Personen"); }
    if (hiddenNote) {
      hiddenNote.textContent = left ? ", " + persons(left, "Person ohne Zusage", "Personen ohne Zusage") + " ausgeblendet" : "";
    }
    if (none) { none.hidden = shown !== 0 || entries.length === 0; }
    keep();
  }
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(filter, 80);
  });
  if (only) { only.addEventListener("change", filter); }
  // The server filtered already when the page came with ?q=; typing further narrows the list here.
  // The walk-in form sits below the list: the link near the search jumps there and puts the cursor in „Name“.
  var walkIn = document.querySelector("[data-checkin-walk-in]");
  var nameField = document.querySelector("#vor-ort-formular [name=name]");
  if (walkIn && nameField) {
    walkIn.addEventListener("click", function () { window.setTimeout(function () { nameField.focus(); }, 0); });
  }
  // On a wide screen the menu starts open; on a phone it stays folded.
  var menu = document.querySelector(".checkin-menu");
  if (menu && window.matchMedia && window.matchMedia("(min-width: 48rem)").matches) { menu.open = true; }
})();
