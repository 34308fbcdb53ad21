/* Signature pad for the signing pages (office tablet and personal link).
 *
 * Progressive enhancement: without this script the page offers only the typed full name.
 * With it, the "draw" choice and the drawing box appear; strokes (finger, stylus or mouse,
 * via pointer events, or touch events where a browser has no pointer events) are drawn on
 * a canvas, and after every stroke the drawing is written as a PNG data URI into the
 * hidden field "signature". No external code, no network use.
 *
 * The typed name stays the first, preselected choice: it works with a keyboard, a screen
 * reader and without this script, while a drawing needs a finger, stylus or mouse; drawing
 * is one tap away. The canvas has "touch-action: none" (signing.css) and every handler
 * cancels the event, so drawing does not scroll or zoom the page.
 */
(function () {
  "use strict";

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function setUp(form) {
    var pad = form.querySelector("[data-signature-pad]");
    if (!pad) { return; }
    var canvas = pad.querySelector("canvas");
    var field = form.querySelector("input[name=signature]");
    var clear = pad.querySelector("[data-clear]");
    var drawn = form.querySelector("input[name=method][value=drawn]");
    var typed = form.querySelector("input[name=method][value=typed]");
    var ctx = canvas.getContext && canvas.getContext("2d");
    if (!ctx || !drawn || !typed || !field) { return; }

    each(form.querySelectorAll("[data-needs-js]"), function (el) { el.hidden = false; });

    function showMethod() {
      var method = drawn.checked ? "drawn" : "typed";
      each(form.querySelectorAll("[data-for]"), function (el) {
        el.hidden = el.getAttribute("data-for") !== method;
      });
    }
    drawn.addEventListener("change", showMethod);
    typed.addEventListener("change", showMethod);
    showMethod();

    ctx.lineWidth = 5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#0b1f5c";
    ctx.fillStyle = "#0b1f5c";

    var drawing = false;
    var strokes = 0;
    var last = null;

    // After a refused submission the page comes back with the drawing kept: show it.
    if (field.value.indexOf("data:image/png;base64,") === 0) {
      var kept = new Image();
      kept.onload = function () {
        ctx.drawImage(kept, 0, 0, canvas.width, canvas.height);
        strokes = 1;
      };
      kept.src = field.value;
    }

    function point(event) {
      var box = canvas.getBoundingClientRect();
      var at = event.changedTouches && event.changedTouches.length ? event.changedTouches[0] : event;
      return {
        x: (at.clientX - box.left) * canvas.width / box.width,
        y: (at.clientY - box.top) * canvas.height / box.height
      };
    }

    function start(event) {
      if (event.button !== undefined && event.button > 0) { return; }
      event.preventDefault();
      drawing = true;
      last = point(event);
      if (canvas.setPointerCapture && event.pointerId !== undefined) {
        try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* not capturable */ }
      }
      ctx.beginPath();
      ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
    }

    function move(event) {
      if (!drawing) { return; }
      event.preventDefault();
      var p = point(event);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    }

    function end(event) {
      if (!drawing) { return; }
      if (event) { event.preventDefault(); }
      drawing = false;
      strokes += 1;
      field.value = canvas.toDataURL("image/png");
    }

    if (window.PointerEvent) {
      canvas.addEventListener("pointerdown", start);
      canvas.addEventListener("pointermove", move);
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointercancel", end);
    } else {
      // Browsers without pointer events (older iOS): touch events, not passive, so that
      // preventDefault keeps the page from scrolling under the finger.
      canvas.addEventListener("touchstart", start, { passive: false });
      canvas.addEventListener("touchmove", move, { passive: false });
      canvas.addEventListener("touchend", end, { passive: false });
      canvas.addEventListener("touchcancel", end, { passive: false });
      canvas.addEventListener("mousedown", start);
      canvas.addEventListener("mousemove", move);
      window.addEventListener("mouseup", end);
    }

    if (clear) {
      clear.addEventListener("click", function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        field.value = "";
        strokes = 0;
      });
    }

    form.addEventListener("submit", function () {
      if (typed.checked) { field.value = ""; }
    });
  }

  function ready() { each(document.querySelectorAll("form.signing-form"), setUp); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
}());
