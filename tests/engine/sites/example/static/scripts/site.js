// Progressive enhancement: a name filter on the people list. Without
// JavaScript the full list is still there; the filter box stays hidden.
document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("[data-filter-target]")) {
    const list = document.querySelector(input.dataset.filterTarget);
    if (!list) continue;
    input.closest("label").hidden = false;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const item of list.children) {
        item.hidden = needle !== "" && !item.textContent.toLowerCase().includes(needle);
      }
    });
  }
});
