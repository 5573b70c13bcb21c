// Shared by every page: the language switcher submits itself, the header's menu (on narrow
// screens the navigation folds behind ⋯), and the theme toggle.
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  var topbar = document.querySelector(".topbar");
  var menuToggle = document.getElementById("menu-toggle");
  function setMenu(open) {
    topbar.classList.toggle("menu-open", open);
    menuToggle.setAttribute("aria-expanded", String(open));
  }
  if (topbar && menuToggle) {
    menuToggle.addEventListener("click", function () { setMenu(!topbar.classList.contains("menu-open")); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && topbar.classList.contains("menu-open")) { setMenu(false); menuToggle.focus(); }
    });
    document.addEventListener("click", function (event) {
      if (topbar.classList.contains("menu-open") && !topbar.contains(event.target)) setMenu(false);
    });
  }

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

  // Until a page arrives with it from the account, the choice is marked unsaved: theme.js
  // then prefers this browser's newer choice to the account's, and the page sends it again.
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
    // Still marked unsaved when it lands: theme.js clears the mark once a page comes from the
    // server with this choice (a reload can be answered before the save is).
    fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      .catch(function () { /* kept locally, sent again from the next page */ });
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
