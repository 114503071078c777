// Offer/decision form: show the fields that belong to the chosen decision.
(function () {
  "use strict";
  var form = document.getElementById("offer-form");
  if (!form) { return; }
  var groups = {
    accepted: ["consent_form_version", "consent_date", "decided_on"],
    refused: ["refusal_reason", "decided_on"],
    pending: []
  };
  var all = ["consent_form_version", "consent_date", "decided_on", "refusal_reason"];
  function wrapper(name) {
    var input = form.querySelector("[name='" + name + "']");
    return input ? input.closest(".mb-3") : null;
  }
  function update() {
    var checked = form.querySelector("input[name='decision']:checked");
    var shown = groups[checked ? checked.value : "pending"] || [];
    all.forEach(function (name) {
      var w = wrapper(name);
      if (w) { w.classList.toggle("offer-hidden", shown.indexOf(name) === -1); }
    });
  }
  form.addEventListener("change", update);
  update();
})();
