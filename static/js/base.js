// Shared by every page: the language switcher submits itself, and the theme toggle.
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // ---- Theme: the header's toggle flips data-theme on <html>; whichever toggle did it (the chat
  // page binds its own in chat.js), the change is remembered here: in localStorage, and on the
  // account (POST /accounts/theme/) so that another browser opens in the same theme.
  var root = document.documentElement;
  var toggle = document.querySelector("[data-theme-toggle]");
  var current = root.dataset.theme;

  function showState() {
    if (!toggle) { return; }
    var dark = root.dataset.theme === "dark";
    toggle.setAttribute("aria-pressed", String(dark));
    toggle.title = dark ? toggle.dataset.labelLight : toggle.dataset.labelDark;
  }

  // Until the account has it, the choice is marked unsaved: theme.js then prefers this
  // browser's newer choice to the account's (a reload can come before the save), and the next
  // page sends it again.
  function remember(theme) {
    try {
      localStorage.setItem("webchat:theme", theme);
      localStorage.setItem("webchat:theme-unsaved", "1");
    } catch (error) { /* not cached */ }
    var url = root.dataset.themeSave;
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!url || !token) { return; }  // signed out: this browser only
    var body = new FormData();
    body.append("theme", theme);
    body.append("csrfmiddlewaretoken", token.value);
    fetch(url, { method: "POST", body: body, credentials: "same-origin" }).then(function (response) {
      if (response.ok) {
        try { localStorage.removeItem("webchat:theme-unsaved"); } catch (error) { /* fine */ }
      }
    }).catch(function () { /* kept locally, sent again from the next page */ });
  }
  try {
    if (localStorage.getItem("webchat:theme-unsaved") && root.dataset.themeSave) { remember(current); }
  } catch (error) { /* storage off */ }

  new MutationObserver(function () {
    if (root.dataset.theme === current) { return; }
    current = root.dataset.theme;
    showState();
    remember(current);
  }).observe(root, { attributes: true, attributeFilter: ["data-theme"] });

  if (toggle) {
    showState();
    toggle.addEventListener("click", function () {
      root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
    });
  }
})();
