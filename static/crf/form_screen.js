// Clinical form screens: keep the autosaved draft and an explicit save from racing each
// other. The page works without this (and without htmx): autosave is then simply off.
(function () {
  "use strict";
  var form = document.getElementById("crf-form");
  if (!form) { return; }
  var waiting = null; // the submit button pressed while an autosave was under way

  // No autosave on a completed form (a change needs a reason and an explicit save), and
  // none once the page is being submitted.
  form.addEventListener("htmx:confirm", function (event) {
    if (event.detail.elt !== form) { return; }
    if (form.dataset.autosaveOff === "1" || form.dataset.leaving === "1") {
      event.preventDefault();
    }
  });

  // An explicit save while an autosave request is under way waits for it, so it is sent
  // with the revision that autosave produced (and is not refused as stale).
  document.addEventListener("submit", function (event) {
    if (event.target !== form) { return; }
    if (form.classList.contains("htmx-request")) {
      event.preventDefault();
      event.stopImmediatePropagation();
      waiting = event.submitter || null;
      return;
    }
    form.dataset.leaving = "1";
  }, true);

  form.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt !== form || waiting === null) { return; }
    var button = waiting;
    waiting = null;
    window.setTimeout(function () { form.requestSubmit(button); }, 0);
  });
})();
