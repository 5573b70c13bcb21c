// Every page's colour theme, set before the page paints (loaded in <head>, no flash).
// A signed-in person's choice comes from the account (base.html renders it as
// data-theme-choice, so it follows them to another browser); otherwise the one remembered in
// localStorage; "system" (or nothing) follows prefers-color-scheme. The choice is left on
// <html> as data-theme-choice; base.js binds the toggle.
(function () {
  "use strict";
  var root = document.documentElement;
  var choice = root.dataset.themeChoice;
  try {
    if (choice && localStorage.getItem("webchat:theme-unsaved")) {
      // This browser's choice is newer than the account's until a page comes with it from the
      // server (a reload can overtake the save; base.js sends it again meanwhile).
      var local = localStorage.getItem("webchat:theme") || choice;
      if (local === choice) { localStorage.removeItem("webchat:theme-unsaved"); }
      choice = local;
    } else if (choice) {
      // The account is the truth; localStorage is only the cache for pages without it.
      localStorage.setItem("webchat:theme", choice);
    } else {
      choice = localStorage.getItem("webchat:theme") || "system";
    }
  } catch (error) { choice = choice || "system"; /* storage off */ }
  var dark = choice === "system" ? window.matchMedia("(prefers-color-scheme: dark)").matches : choice === "dark";
  root.dataset.themeChoice = choice;
  root.dataset.theme = dark ? "dark" : "light";
})();
