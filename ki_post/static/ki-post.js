// After a failed submit, move keyboard and screen-reader focus to the error summary (it links to
// the fields); without this, focus stays at the top of the reloaded page.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
  }
});
