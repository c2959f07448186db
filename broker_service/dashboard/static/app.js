// Live refresh (pausable), row selection, and confirmations. Plain script, no build step.
(function () {
  "use strict";
  var KEY = "leasq.live";
  var paused = localStorage.getItem(KEY) === "off";

  // htmx polls #live only while this answers true: not when paused, not while the user has
  // rows selected or is typing in a form inside the live part.
  window.leasqLive = function () {
    if (paused) return false;
    var live = document.getElementById("live");
    if (!live) return false;
    if (live.querySelector("input[type=checkbox]:checked")) return false;
    var active = document.activeElement;
    return !(active && live.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName));
  };

  function showToggle() {
    var button = document.getElementById("live-toggle");
    if (!button) return;
    button.setAttribute("aria-pressed", paused ? "false" : "true");
    button.textContent = paused ? "Paused" : "Live";
    button.classList.toggle("paused", paused);
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.id === "live-toggle") {
      paused = !paused;
      localStorage.setItem(KEY, paused ? "off" : "on");
      showToggle();
    }
    // A "select all" box checks every row box of its table.
    if (target.matches && target.matches("input[data-select-all]")) {
      var table = target.closest("table");
      table.querySelectorAll("input[name=id]").forEach(function (box) {
        box.checked = target.checked;
      });
    }
  });

  // Forms and buttons with data-confirm ask first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // htmx requests carry the CSRF value too.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector("meta[name=csrf-token]");
    if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
  });

  document.addEventListener("DOMContentLoaded", showToggle);
})();
