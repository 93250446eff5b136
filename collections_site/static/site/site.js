// The back office's own script: keyboard shortcuts for tables marked data-keyboard-rows.
//   /  focus the page's search box      j / k  next / previous row      Enter  open the selected row
(function () {
  "use strict";
  function rows() {
    const table = document.querySelector("[data-keyboard-rows]");
    return table ? Array.from(table.querySelectorAll("tbody tr[data-href]")) : [];
  }
  function select(list, index) {
    list.forEach((row) => row.classList.remove("selected"));
    if (list[index]) {
      list[index].classList.add("selected");
      list[index].scrollIntoView({ block: "nearest" });
    }
  }
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.key === "/") {
      const search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
      return;
    }
    const list = rows();
    if (!list.length) return;
    const current = list.findIndex((row) => row.classList.contains("selected"));
    if (event.key === "j") { select(list, Math.min(current + 1, list.length - 1)); }
    else if (event.key === "k") { select(list, Math.max(current - 1, 0)); }
    else if (event.key === "Enter" && current >= 0) { window.location.href = list[current].dataset.href; }
  });
  document.addEventListener("click", function (event) {
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button, input, select, form")) window.location.href = row.dataset.href;
  });
})();
