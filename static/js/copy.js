// Copy buttons (the API keys page, "Use the API"): <button data-copy="ID"> copies the text
// of the element with that id. The labels come from the button's data-label-* attributes,
// written by the template in the page's language.
"use strict";

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// navigator.clipboard exists only on https and localhost; a school server reached as
// http://10.x.x.x has none, so there the text is selected and copied the old way.
async function copyText(element) {
  const text = element.textContent;
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  selectText(element);
  if (!document.execCommand("copy")) throw new Error("copy refused");
}

function flash(button, text) {
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = text;
  clearTimeout(button.copyTimer);
  button.copyTimer = setTimeout(() => { button.textContent = label; }, 2000);
}

// The buttons come hidden: one tapped before this module ran would do nothing (and without
// scripts there is no copying, only the text to select). Shown once they work.
document.querySelectorAll("button[data-copy]").forEach((button) => {
  const target = document.getElementById(button.dataset.copy);
  if (!target) return;
  button.addEventListener("click", () => {
    copyText(target).then(
      () => flash(button, button.dataset.labelCopied),
      () => { selectText(target); flash(button, button.dataset.labelFailed); },
    );
  });
  button.hidden = false;
});
