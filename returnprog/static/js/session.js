/* Idle-timeout warning. Optional: without it the header still says when the session ends
   and offers "stay signed in" as a plain form. Two minutes before the end a warning
   appears; its button keeps the session alive in the background; at the end the page
   reloads, which leads to the sign-in page. No inline script, no external code. */
(function () {
  "use strict";
  var body = document.body;
  var timeout = parseInt(body.getAttribute("data-session-timeout"), 10);
  var warning = parseInt(body.getAttribute("data-session-warning"), 10);
  var box = document.getElementById("session-warning");
  if (!timeout || !box) { return; }
  var warnTimer, endTimer;

  function schedule() {
    clearTimeout(warnTimer); clearTimeout(endTimer);
    warnTimer = setTimeout(function () {
      box.hidden = false;
      var button = box.querySelector("button");
      if (button) { button.focus(); }
    }, Math.max(0, timeout - warning) * 1000);
    endTimer = setTimeout(function () { window.location.reload(); }, (timeout + 2) * 1000);
  }

  var forms = document.querySelectorAll("form.keepalive");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.fetch || !window.FormData) { return; }
      event.preventDefault();
      fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { window.location.reload(); return; }
        box.hidden = true;
        var shown = document.getElementById("session-expires");
        if (shown) {
          var end = new Date(Date.now() + timeout * 1000);
          shown.textContent = ("0" + end.getHours()).slice(-2) + ":" + ("0" + end.getMinutes()).slice(-2);
        }
        schedule();
      }, function () { form.submit(); });
    });
  });
  schedule();
}());
