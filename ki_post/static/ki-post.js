// After a failed submit, move keyboard and screen-reader focus to the error summary (it links to
// the fields); without this, focus stays at the top of the reloaded page. The result of a check
// (Einstellungen → "Verbindung prüfen") and the letter preview (a heading marked data-focus) get the focus the same way.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary") || document.querySelector(".check-result") ||
    document.querySelector("[data-focus]");
  if (summary) {
    summary.focus();
  }
});

// Buttons that start a background job (Rundschreiben: "Briefe erstellen", "Als Aussendung
// vorbereiten") are disabled once clicked, so a second click cannot send the form again while the
// first request is on its way. The button's name and value go along in a hidden field: a disabled
// button is not submitted itself.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (!button || !button.hasAttribute("data-job-button") || event.defaultPrevented) { return; }
  var carried = document.createElement("input");
  carried.type = "hidden";
  carried.name = button.name;
  carried.value = button.value;
  event.target.appendChild(carried);
  button.disabled = true;
  button.setAttribute("aria-disabled", "true");
  button.setAttribute("data-label", button.textContent);
  button.textContent = "Auftrag wird gestartet …";
});
// Back from the job page (browser cache): the buttons work again.
window.addEventListener("pageshow", function (event) {
  if (!event.persisted) { return; }
  document.querySelectorAll("button[data-job-button][disabled]").forEach(function (button) {
    button.disabled = false;
    button.removeAttribute("aria-disabled");
    button.textContent = button.getAttribute("data-label") || button.textContent;
  });
});
