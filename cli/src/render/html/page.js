// Filters the rows of the tests table; the page reads the same without it.
(function () {
  var box = document.getElementById("only-problems");
  if (!box) return;
  box.addEventListener("change", function () {
    var rows = document.querySelectorAll("table.tests tbody tr");
    for (var i = 0; i < rows.length; i++) {
      var keep = !box.checked || rows[i].classList.contains("failing") || rows[i].classList.contains("never");
      rows[i].style.display = keep ? "" : "none";
    }
  });
})();
