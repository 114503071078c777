// PRESENT patient questionnaire: show follow-up questions only when they apply, show the
// first error after a refused save, and keep a double tap on a submit button from sending
// the form twice. Works without it.
(function () {
  "use strict";
  function applyShowIf(form) {
    form.querySelectorAll("[data-show-if]").forEach(function (el) {
      var spec = el.getAttribute("data-show-if").split(":");
      var name = spec[0];
      var values = spec[1].split(",");
      var checked = form.querySelector('input[name="' + name + '"]:checked');
      var visible = checked !== null && values.indexOf(checked.value) !== -1;
      el.hidden = !visible;
    });
  }
  // After a refused POST the first field with an error carries ``autofocus`` (which works
  // without this script); bring its whole question, not only the control, into view.
  function showFirstError() {
    var first = document.querySelector(".has-error");
    if (!first) { return; }
    var control = first.querySelector("[autofocus]");
    if (control) { control.focus({ preventScroll: true }); }
    // "instant": Bootstrap makes scrolling smooth, which would animate from the top.
    first.scrollIntoView({ block: "start", behavior: "instant" });
  }
  if (document.readyState === "complete") { showFirstError(); }
  else { window.addEventListener("load", showFirstError); }
  document.querySelectorAll("form").forEach(function (form) {
    if (form.querySelector("[data-show-if]")) {
      applyShowIf(form);
      form.addEventListener("change", function () { applyShowIf(form); });
    }
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitted === "1") { event.preventDefault(); return; }
      form.dataset.submitted = "1";
      form.querySelectorAll("[data-once]").forEach(function (b) {
        window.setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
