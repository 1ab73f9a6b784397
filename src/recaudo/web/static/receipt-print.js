// The receipt page's "Imprimir" button (inline scripts are blocked by the CSP).
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("imprimir");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
});
