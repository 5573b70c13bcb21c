// Shared by every page: the language switcher submits itself, and the theme toggle.
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // ---- Theme: the header's toggle goes round three choices. From "as this device"
  // (prefers-color-scheme) it goes to the other theme, then to the device's theme kept
  // whatever the device says, then back to following the device; so the first press always
  // changes what you see. The choice is remembered in localStorage and on the account (POST
  // /accounts/theme/), so another browser opens in the same theme.
  var root = document.documentElement;
  var toggle = document.querySelector("[data-theme-toggle]");
  var deviceDark = window.matchMedia("(prefers-color-scheme: dark)");
  var ICONS = { system: "\u25D0", light: "\u2600", dark: "\u263E" };

  function choice() { return root.dataset.themeChoice || "system"; }

  function showState() {
    if (!toggle) { return; }
    var current = choice();
    var label = toggle.dataset["label" + current.charAt(0).toUpperCase() + current.slice(1)];
    toggle.title = label;
    toggle.querySelector("[data-theme-label]").textContent = label;
    toggle.querySelector("[data-theme-icon]").textContent = ICONS[current];
  }

  function apply(next) {
    root.dataset.themeChoice = next;
    var dark = next === "system" ? deviceDark.matches : next === "dark";
    root.dataset.theme = dark ? "dark" : "light";
    showState();
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
    if (localStorage.getItem("webchat:theme-unsaved") && root.dataset.themeSave) { remember(choice()); }
  } catch (error) { /* storage off */ }

  // Following the device: when it switches (at dusk, say), so does the page.
  deviceDark.addEventListener("change", function () { if (choice() === "system") { apply("system"); } });

  if (toggle) {
    showState();
    toggle.addEventListener("click", function () {
      var device = deviceDark.matches ? "dark" : "light";
      var other = device === "dark" ? "light" : "dark";
      var current = choice();
      var next = current === "system" ? other : current === other ? device : "system";
      apply(next);
      remember(next);
    });
  }
})();
