// Data review block of a form screen: show the item badges (verified, verify again, open
// queries) next to their fields too. Without this script they are in the review block's
// table only.
(function () {
  "use strict";
  var form = document.getElementById("crf-form");
  if (!form) { return; }
  document.querySelectorAll("#review [data-badge-for]").forEach(function (badge) {
    var item = form.querySelector('[data-item="' + badge.dataset.badgeFor + '"]');
    var label = item && item.querySelector(".crf-label");
    if (!label) { return; }
    var copy = badge.cloneNode(true);
    copy.removeAttribute("data-testid");
    copy.removeAttribute("data-badge-for");
    copy.classList.add("ms-2", "crf-review-badge");
    label.appendChild(copy);
  });
})();
