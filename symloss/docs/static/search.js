/* symloss docs: search the losses as you type, offline.
 *
 * The index is window.SYMLOSS_SEARCH (search-index.js, written by each build): one
 * entry per loss with its page and the lower-case words it is found by (name, aliases,
 * title, group, the library calls it cites).  Every word of the query must occur.
 */
(function () {
  "use strict";
  var box = document.getElementById("search");
  var list = document.getElementById("search-results");
  var index = window.SYMLOSS_SEARCH || [];
  if (!box || !list) { return; }

  function matches(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { return []; }
    return index.filter(function (entry) {
      return words.every(function (w) {
        return entry.text.indexOf(w) !== -1 || entry.text.indexOf(w.replace(/[\s-]/g, "_")) !== -1;
      });
    }).slice(0, 12);
  }

  function show() {
    var found = matches(box.value);
    list.textContent = "";
    found.forEach(function (entry) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = entry.page;
      link.textContent = entry.title;
      var note = document.createElement("span");
      note.className = "note";
      note.textContent = " " + entry.name + " · " + entry.group;
      item.appendChild(link);
      item.appendChild(note);
      list.appendChild(item);
    });
    list.hidden = found.length === 0;
    list.setAttribute("data-count", String(found.length));
  }

  box.addEventListener("input", show);
  box.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      var first = list.querySelector("a");
      if (first) { window.location.href = first.getAttribute("href"); }
    }
  });
  show();
})();
