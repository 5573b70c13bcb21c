// The chat page's colour theme, set before the page paints (loaded in <head>, no flash):
// the one the student picked (remembered in localStorage), else the system's
// (prefers-color-scheme). chat.js binds the toggle.
(function () {
  "use strict";
  var saved = null;
  try { saved = localStorage.getItem("webchat:theme"); } catch (error) { /* storage off */ }
  var dark = saved ? saved === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
})();
