// The preview-only pages: progressive enhancement, never a substitute for the
// server's checks. Without JavaScript every form still works.
document.addEventListener("DOMContentLoaded", () => {
  // "Show password" toggle: hidden unless this script runs.
  for (const box of document.querySelectorAll("[data-show-password]")) {
    const field = document.getElementById(box.dataset.showPassword);
    if (!field) continue;
    box.closest("label").hidden = false;
    box.addEventListener("change", () => { field.type = box.checked ? "text" : "password"; });
  }

  // One click, one request: a double click must not sign in or upload twice.
  for (const form of document.querySelectorAll("form[data-single-submit]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
    });
  }

  // Say at once that a file is too large or of the wrong type, instead of after the upload.
  for (const form of document.querySelectorAll("form[data-max-bytes]")) {
    const input = form.querySelector("input[type=file]");
    const problem = form.querySelector("[data-upload-problem]");
    const extensions = form.dataset.extensions.split(" ");
    input.addEventListener("change", () => {
      const file = input.files[0];
      let message = "";
      if (file && !extensions.some((ext) => file.name.toLowerCase().endsWith(ext))) {
        message = `${file.name} is not an allowed file type: the name must end in ${extensions.join(", ")}.`;
      } else if (file && file.size > Number(form.dataset.maxBytes)) {
        message = `${file.name} is larger than the upload limit of ${form.dataset.limitText}.`;
      }
      problem.textContent = message;
      problem.hidden = message === "";
      input.setCustomValidity(message);
    });
  }
});
