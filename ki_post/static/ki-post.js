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
