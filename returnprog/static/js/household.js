/* Household member blocks on the intake form, added and removed in place. Optional:
   without it the "add" and "remove" buttons submit the form, which comes back with what
   was typed plus one block more (or one less), nothing saved. No inline script (the CSP
   allows scripts from this site only). Row numbers in the field names may have gaps after
   a removal: the server reads every row up to the highest number it receives. */
(function () {
  "use strict";
  var members = document.getElementById("members");
  var template = document.getElementById("member-template");
  var addRow = document.getElementById("add-member-row");
  var addButton = document.getElementById("add-member");
  var count = document.getElementById("member-rows");
  if (!members || !template || !addButton || !count || !template.content) { return; }
  var max = parseInt(members.getAttribute("data-max"), 10) || 15;
  var legendPattern = template.content.querySelector("legend").textContent;

  function blocks() { return members.querySelectorAll("fieldset.member"); }

  function nextRow() {
    var highest = -1;
    Array.prototype.forEach.call(blocks(), function (block) {
      highest = Math.max(highest, parseInt(block.getAttribute("data-row"), 10));
    });
    return Math.max(highest + 1, parseInt(count.value, 10) || 0);
  }

  function renumber() {
    // Legends count the blocks shown; field names keep their row numbers.
    Array.prototype.forEach.call(blocks(), function (block, i) {
      var legend = block.querySelector("legend");
      var text = legendPattern.replace("__NUM__", String(i + 1));
      legend.textContent = text;
      var hidden = block.querySelector(".remove-member .visually-hidden");
      if (hidden) { hidden.textContent = " (" + text + ")"; }
    });
    addRow.hidden = blocks().length >= max;
  }

  function isEmpty(block) {
    var fields = block.querySelectorAll("input[type=text], input[type=email], input[type=tel], input[type=date], select[name$='-relationship']");
    return Array.prototype.every.call(fields, function (f) { return !f.value; });
  }

  addButton.addEventListener("click", function (event) {
    event.preventDefault();
    if (blocks().length >= max) { return; }
    var row = nextRow();
    var html = template.innerHTML.split("__ROW__").join(String(row));
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var block = holder.querySelector("fieldset");
    members.appendChild(block);
    count.value = String(row + 1);
    renumber();
    var first = block.querySelector("input, select");
    if (first) { first.focus(); }
  });

  members.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".remove-member") : null;
    if (!button) { return; }
    var block = button.closest("fieldset.member");
    // A block with something typed in goes through the server, like without script:
    // what the member's fields hold is then visibly gone from the re-rendered form.
    if (!block || !isEmpty(block)) { return; }
    event.preventDefault();
    var position = Array.prototype.indexOf.call(blocks(), block);
    block.parentNode.removeChild(block);
    renumber();
    var rest = blocks();
    var focus = rest[Math.min(position, rest.length - 1)];
    (focus ? focus.querySelector("input") : addButton).focus();
  });
}());
