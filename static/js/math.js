// Math in replies: found in the Markdown by the server's rules (apps/conversations/rendering.py,
// MATH_PATTERN: the same pattern), kept away from Markdown, put back as
// <span class="math-inline|math-display">TeX</span>, and typeset with KaTeX. KaTeX (from
// node_modules, under static/vendor/katex/) is loaded the first time a reply has math, so
// a page without any pays nothing for it. It builds its DOM through the DOM API (allowed by
// the page's CSP), with \href, \url and the like switched off (trust: false).
(function () {
  "use strict";
  var PATTERN = new RegExp(
    "(?<fence>^ {0,3}(?<mark>`{3,}|~{3,})[^\\n]*(?:\\n[\\s\\S]*?(?:\\n {0,3}\\k<mark>[ \\t]*(?=\\n|$(?![\\s\\S]))|$(?![\\s\\S]))|$(?![\\s\\S])))" +
    "|(?<code>(?<ticks>`+)[\\s\\S]+?\\k<ticks>)" +
    "|(?<dollar>\\\\\\$)" +
    "|\\$\\$(?<display>[\\s\\S]+?)\\$\\$" +
    "|\\\\\\[(?<display2>(?:(?!\\\\\\[)[\\s\\S])+?)\\\\\\]" +
    "|\\\\\\((?<inline2>(?:(?!\\\\\\()[^\\n`])+?)\\\\\\)" +
    "|(?<![\\\\$])\\$(?<inline>[^\\s$`](?:[^$\\n`]*?[^\\s\\\\$`])?)\\$(?!\\d)",
    "gm"
  );
  var MAX_CHARS = 4000;  // longer TeX is shown as it is (rendering.py: MATH_MAX_CHARS)
  var script = document.currentScript;
  var base = script ? script.dataset.katex : "";  // where KaTeX is served (the script tag says)
  var loading = null;

  // The text with each math span replaced by a placeholder, and what they stand for.
  function takeOut(text) {
    var found = [];
    var prefix = "wcmath" + Math.random().toString(16).slice(2, 10) + "x";
    var out = text.replace(PATTERN, function () {
      var groups = arguments[arguments.length - 1];
      if (groups.fence !== undefined || groups.code !== undefined) return arguments[0];
      if (groups.dollar !== undefined) return "$";
      var tex = groups.display || groups.display2 || groups.inline2 || groups.inline || "";
      if (!tex.trim() || tex.length > MAX_CHARS) return arguments[0];
      found.push({tex: tex.trim(), display: groups.display !== undefined || groups.display2 !== undefined});
      return prefix + (found.length - 1) + "z";
    });
    return {text: out, found: found, prefix: prefix};
  }

  // The placeholders in `root`'s text (never in attributes) back as math spans.
  function putBack(root, math) {
    if (!math.found.length) return;
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var nodes = [];
    while (walker.nextNode()) if (walker.currentNode.nodeValue.indexOf(math.prefix) !== -1) nodes.push(walker.currentNode);
    var split = new RegExp(math.prefix + "(\\d+)z");
    nodes.forEach(function (node) {
      var fragment = document.createDocumentFragment();
      node.nodeValue.split(split).forEach(function (part, index) {
        if (index % 2 === 0) {
          if (part) fragment.appendChild(document.createTextNode(part));
          return;
        }
        var entry = math.found[Number(part)];
        var span = document.createElement("span");
        span.className = entry && entry.display ? "math-display" : "math-inline";
        span.textContent = entry ? entry.tex : "";
        fragment.appendChild(span);
      });
      node.replaceWith(fragment);
    });
  }

  function katexLoaded() {
    if (window.katex) return Promise.resolve(window.katex);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var style = document.createElement("link");
        style.rel = "stylesheet";
        style.href = base + "katex.min.css";
        document.head.appendChild(style);
        var tag = document.createElement("script");
        tag.src = base + "katex.min.js";
        tag.onload = function () { resolve(window.katex); };
        tag.onerror = function () { loading = null; reject(new Error("KaTeX did not load")); };
        document.head.appendChild(tag);
      });
    }
    return loading;
  }

  function keyOf(span) { return (span.classList.contains("math-display") ? "d|" : "i|") + (span.dataset.tex || span.textContent); }

  // The typeset spans under `root`, by TeX: a streaming reply is rendered afresh each frame,
  // and typeset() moves these into the new rendering instead of typesetting them again.
  function harvest(root) {
    var found = new Map();
    root.querySelectorAll(".math-inline[data-tex], .math-display[data-tex]").forEach(function (span) {
      var key = keyOf(span);
      if (!found.has(key)) found.set(key, []);
      found.get(key).push(span);
    });
    return found;
  }

  // Typeset every math span under `root` not typeset yet (reusing `done`, from harvest()).
  // Faulty TeX stays as its source, marked as such; if KaTeX cannot load, the TeX stays as
  // text.
  function typeset(root, done) {
    var spans = Array.prototype.filter.call(
      root.querySelectorAll(".math-inline, .math-display"),
      function (span) { return !span.dataset.tex; }
    );
    if (done) {
      spans = spans.filter(function (span) {
        var ready = done.get(keyOf(span));
        if (!ready || !ready.length) return true;
        span.replaceWith(ready.shift());
        return false;
      });
    }
    if (!spans.length) return Promise.resolve();
    return katexLoaded().then(function (katex) {
      spans.forEach(function (span) {
        if (span.dataset.tex || !span.isConnected) return;
        var tex = span.textContent;
        span.dataset.tex = tex;  // for copying, and so it is done once
        span.title = tex;
        try {
          katex.render(tex, span, {
            displayMode: span.classList.contains("math-display"), throwOnError: true, trust: false,
            strict: "ignore", maxSize: 20, maxExpand: 500, output: "htmlAndMathml"
          });
        } catch (error) {
          // Shown as its source, marked; not KaTeX's own error rendering, whose colour is an
          // inline style attribute the page's CSP refuses.
          span.textContent = tex;
          span.classList.add("math-error");
          span.title = String(error && error.message || error).slice(0, 300);
        }
      });
    }).catch(function () { /* the TeX stays readable as text */ });
  }

  window.webchatMath = {takeOut: takeOut, putBack: putBack, harvest: harvest, typeset: typeset};
})();
