/* symloss docs: typeset every formula with the bundled KaTeX, and wire the copy buttons.
 *
 * Each formula is an element of class "math" (plus "display" or "inline") whose text is
 * its LaTeX source, so a page read without JavaScript still shows the source.  Errors
 * are rendered in place (throwOnError: false) as elements of class "katex-error".
 */
(function () {
  "use strict";

  function typeset() {
    var nodes = document.querySelectorAll(".math");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      katex.render(node.textContent, node, {
        displayMode: node.classList.contains("display"),
        throwOnError: false,
        strict: "error",
        output: "htmlAndMathml"
      });
    }
    document.documentElement.setAttribute("data-typeset", String(nodes.length));
  }

  function copyButtons() {
    var buttons = document.querySelectorAll("button.copy");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        var button = event.currentTarget;
        var source = document.getElementById(button.getAttribute("data-target"));
        var text = source.textContent;
        var done = function () { button.textContent = "Copied"; };
        var select = function () {
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, select);
        } else {
          select();
        }
      });
    }
  }

  typeset();
  copyButtons();
})();
