// Rundschreiben: shows the progress of a background job (letters, mailing) without reloading;
// when the job ends, the page is loaded once more to show the download or the error.
(function () {
  "use strict";
  var section = document.getElementById("auftrag");
  if (!section) { return; }
  var key = "ki-post-auftrag:" + section.getAttribute("data-url");
  if (section.getAttribute("data-finished") === "ja") {
    // Reloaded because the job ended: focus goes to the result (or the error), so it is read out.
    var result = document.getElementById("auftrag-ergebnis");
    if (result && window.sessionStorage && sessionStorage.getItem(key)) { sessionStorage.removeItem(key); result.focus(); }
    return;
  }
  if (!window.fetch) { return; }
  var url = section.getAttribute("data-url");
  var bar = document.getElementById("auftrag-balken");

  function set(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { window.setTimeout(poll, 3000); return; }
        bar.value = data.percent;
        bar.textContent = data.percent + " %";
        set("auftrag-text", data.text);
        set("auftrag-prozent", String(data.percent));
        set("auftrag-phase", data.phase);
        set("auftrag-zustand", data.state_label);
        if (data.finished) {
          if (window.sessionStorage) { sessionStorage.setItem(key, "1"); }
          window.location.reload();
        } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 500);
}());
