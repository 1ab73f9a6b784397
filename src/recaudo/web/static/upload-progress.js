// The debts file upload (templates/imports/index.html): the real progress of the upload,
// from the browser's own byte count (htmx's `htmx:xhr:progress`); once every byte is sent
// the server checks and applies the rows in one transaction, whose length is not known
// here, so the bar turns indeterminate and says so. Without JavaScript the form posts
// normally and the report page follows. Listeners sit on the document, so a form that
// htmx swapped in (after a refused file) is followed too.
(function () {
  "use strict";
  function parts(evt) {
    var form = evt.target;
    if (!form || form.id !== "import-form") { return null; }
    return {
      box: document.getElementById("import-progress"),
      bar: document.getElementById("import-progress-bar"),
      text: document.getElementById("import-progress-text"),
      button: document.getElementById("import-submit")
    };
  }
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var p = parts(evt);
    if (!p) { return; }
    p.box.hidden = false;
    p.bar.setAttribute("value", "0");
    p.text.textContent = "Subiendo el archivo: 0 %";
    p.button.disabled = true;
  });
  document.addEventListener("htmx:xhr:progress", function (evt) {
    var p = parts(evt);
    var d = evt.detail;
    if (!p || !d || !d.lengthComputable || !d.total) { return; }
    if (d.loaded < d.total) {
      var pct = Math.floor(d.loaded * 100 / d.total);
      p.bar.setAttribute("value", String(pct));
      p.text.textContent = "Subiendo el archivo: " + pct + " %";
    } else {
      p.bar.removeAttribute("value");
      p.text.textContent = "Archivo recibido. Procesando las filas (validación y aplicación)…";
    }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var p = parts(evt);
    if (p && p.button) { p.button.disabled = false; }
  });
})();
