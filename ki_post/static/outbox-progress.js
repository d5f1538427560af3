// Postausgang: refreshes the progress of a mailing without reloading the page.
// The numbers live in an aria-live region, so screen readers hear the changes.
(function () {
  "use strict";
  var section = document.getElementById("fortschritt");
  if (!section || !window.fetch) { return; }
  var url = section.getAttribute("data-url");
  var bar = document.getElementById("fortschritt-balken");
  var number = new Intl.NumberFormat("de-DE");
  var lastText = null;

  function setField(name, text) {
    var el = section.querySelector('[data-feld="' + name + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  function eta(data) {
    if (data.finished) { return "Fertig."; }
    if (data.state === "pausiert") { return "Pausiert" + (data.pause_reason ? ": " + data.pause_reason : "") + "."; }
    if (data.seconds_left === null || data.seconds_left === undefined) { return ""; }
    if (data.seconds_left < 60) { return "Noch weniger als eine Minute."; }
    return "Noch etwa " + number.format(Math.ceil(data.seconds_left / 60)) + " Minuten.";
  }

  function update(data) {
    bar.value = data.percent;
    bar.textContent = data.percent + " %";
    setField("percent", String(data.percent));
    setField("sent", number.format(data.sent));
    setField("waiting", number.format(data.waiting));
    setField("failed", number.format(data.failed));
    setField("unklar", number.format(data.unklar));
    setField("skipped", number.format(data.skipped));
    setField("withdrawn", number.format(data.withdrawn));
    setField("total", number.format(data.total));
    setField("eta", eta(data));
    var state = document.getElementById("zustand");
    if (state && state.textContent !== data.state_label) { state.textContent = data.state_label; }
    return data.finished || data.state === "abgebrochen";
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        var stop = false;
        if (data) {
          var text = JSON.stringify(data);
          if (text !== lastText) { stop = update(data); lastText = text; }
          else { stop = data.finished && data.state !== "entwurf"; }
        }
        if (!stop || (data && data.state === "entwurf")) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
}());
