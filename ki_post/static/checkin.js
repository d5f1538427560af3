/* Einlass: filter the server-rendered list while typing (without JavaScript the search form asks the server). */
(function () {
  "use strict";
  var input = document.querySelector("[data-checkin-search]");
  if (!input) { return; }
  var entries = Array.prototype.slice.call(document.querySelectorAll(".checkin-entry"));
  var count = document.getElementById("einlass-treffer");
  var none = document.getElementById("einlass-keine");
  var timer = null;
  function filter() {
    var needle = input.value.trim().toLowerCase();
    var shown = 0;
    entries.forEach(function (entry) {
      var match = !needle || entry.getAttribute("data-search").indexOf(needle) !== -1;
      entry.hidden = !match;
      if (match) { shown += 1; }
    });
    if (count) { count.textContent = shown === 1 ? "1 Person" : shown.toLocaleString("de-DE") + " Personen"; }
    if (none) { none.hidden = shown !== 0 || entries.length === 0; }
  }
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(filter, 80);
  });
  // The server filtered already when the page came with ?q=; typing further narrows the list here.
})();
