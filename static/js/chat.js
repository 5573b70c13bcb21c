// The chat page: one websocket; a reply is rendered from Markdown as it streams (markdown-it,
// then DOMPurify with the server's allow-list), and when it ends the server's own rendering of
// the whole message (_message.html: body, footer, badges) takes its place, as after a reload.
// Nothing typed is lost: the box keeps a draft per conversation until the server has taken
// the message, and every refusal puts the text back.
(function () {
  "use strict";
  var chat = document.getElementById("chat");
  var messages = document.getElementById("messages");
  var form = document.getElementById("composer");
  var content = document.getElementById("content");
  var model = document.getElementById("model");
  var sendButton = document.getElementById("send");
  var stopButton = document.getElementById("stop");
  var regenerate = document.getElementById("regenerate");
  var errorBox = document.getElementById("chat-error");
  var list = document.getElementById("conversation-list");
  var jumpButton = document.getElementById("jump-latest");
  var announcer = document.getElementById("announcer");
  var labels = chat.dataset;
  var conversation = chat.dataset.conversation ? Number(chat.dataset.conversation) : null;
  var socket = null;
  var busy = false;
  var pending = null; // sent, not yet taken by the server: {text, article, regenerate, removed}
  var current = null; // the reply being streamed: {article, body, text, scheduled}
  var pendingTitle = "";
  var editing = null; // the question being edited: its article
  var editingBar = document.getElementById("editing");

  // ---- Markdown while streaming ------------------------------------------------------
  var policy = JSON.parse(document.getElementById("markdown-policy").textContent);
  var markdown = window.markdownit ? window.markdownit({html: true, linkify: false, typographer: false}) : null;
  if (markdown) {
    // Fenced code as the server writes it (codehilite): <div class="highlight"><pre><code class="language-x">.
    markdown.renderer.rules.fence = function (tokens, index) {
      var token = tokens[index];
      var language = (token.info || "").trim().split(/\s+/)[0].replace(/[^\w#.+-]/g, "");
      var escaped = markdown.utils.escapeHtml(token.content);
      return '<div class="highlight"><pre><code' + (language ? ' class="language-' + language + '"' : "") + ">" +
        escaped + "</code></pre></div>\n";
    };
    markdown.renderer.rules.code_block = markdown.renderer.rules.fence;
  }
  var schemes = new RegExp("^(?:" + policy.schemes.join("|") + "):", "i");
  var purify = window.DOMPurify;
  if (purify) {
    // Per tag, as nh3 does on the server: an attribute allowed on <a> is not allowed on <p>.
    purify.addHook("uponSanitizeAttribute", function (node, data) {
      var allowed = policy.attributes[node.nodeName.toLowerCase()] || [];
      if (allowed.indexOf(data.attrName) === -1) data.keepAttr = false;
    });
    purify.addHook("afterSanitizeAttributes", function (node) {
      if (node.nodeName === "A") {
        var href = node.getAttribute("href");
        if (href && !schemes.test(href) && /^[a-z][a-z0-9+.-]*:/i.test(href)) node.removeAttribute("href");
        node.setAttribute("rel", policy.rel);
      }
    });
  }
  var allAttributes = [];
  Object.keys(policy.attributes).forEach(function (tag) {
    policy.attributes[tag].forEach(function (name) { if (allAttributes.indexOf(name) === -1) allAttributes.push(name); });
  });
  var purifyConfig = {
    ALLOWED_TAGS: policy.tags, ALLOWED_ATTR: allAttributes, ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i, RETURN_DOM_FRAGMENT: true
  };

  function renderLive(reply) {
    reply.scheduled = false;
    if (!markdown || !purify) { reply.body.textContent = reply.text; return; }
    // Math is taken out before Markdown (which would eat its backslashes) and put back after
    // sanitising, as the server does (math.js).
    var math = window.webchatMath ? window.webchatMath.takeOut(reply.text) : null;
    var fragment = purify.sanitize(markdown.render(math ? math.text : reply.text), purifyConfig);
    if (math) window.webchatMath.putBack(fragment, math);
    var typeset = math && math.found.length ? window.webchatMath.harvest(reply.body) : null;
    reply.body.replaceChildren(fragment);
    addCodeTools(reply.body);
    if (typeset) window.webchatMath.typeset(reply.body, typeset).then(followIfAtBottom);
    followIfAtBottom();
  }

  function typesetMath(root) {
    if (window.webchatMath) window.webchatMath.typeset(root);
  }

  function scheduleRender(reply) {
    if (reply.scheduled) return;
    reply.scheduled = true;
    // Once a frame at most (a long reply re-renders as a whole); a hidden tab has no frames,
    // so a timer stands in.
    if (document.hidden) setTimeout(function () { if (current === reply) renderLive(reply); }, 250);
    else requestAnimationFrame(function () { if (current === reply) renderLive(reply); });
  }

  // ---- Code blocks: language label and Copy ------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // A school server on plain http has no Clipboard API: the old way still works.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var done = document.execCommand("copy");
      area.remove();
      if (done) resolve(); else reject(new Error("copy refused"));
    });
  }

  function addCodeTools(root) {
    root.querySelectorAll("pre").forEach(function (pre) {
      var holder = pre.parentNode;
      if (holder.querySelector(":scope > .code-bar")) return;
      var bar = document.createElement("div");
      bar.className = "code-bar";
      var code = pre.querySelector("code");
      var match = code && /(?:^|\s)language-([\w#.+-]+)/.exec(code.className);
      var label = document.createElement("span");
      label.className = "code-lang";
      label.textContent = match && match[1] !== "text" ? match[1] : "";
      bar.appendChild(label);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = labels.labelCopy;
      button.title = labels.labelCopyCode;
      button.addEventListener("click", function () {
        copyText(pre.innerText).then(function () {
          button.textContent = labels.labelCopied;
          setTimeout(function () { button.textContent = labels.labelCopy; }, 1500);
        });
      });
      bar.appendChild(button);
      holder.insertBefore(bar, pre);
      pre.tabIndex = 0; // a code block that scrolls sideways can be scrolled from the keyboard
    });
  }

  // ---- Scrolling: follow the reply only while the reader is at the bottom -------------
  var atBottom = true;
  function nearBottom() { return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 48; }
  function toBottom() { messages.scrollTop = messages.scrollHeight; atBottom = true; jumpButton.hidden = true; }
  function followIfAtBottom() { if (atBottom) toBottom(); else jumpButton.hidden = false; }
  messages.addEventListener("scroll", function () {
    atBottom = nearBottom();
    if (atBottom) jumpButton.hidden = true;
  }, {passive: true});
  jumpButton.addEventListener("click", function () { toBottom(); content.focus({preventScroll: true}); });

  // ---- Drafts: one per conversation, until the server has taken the message ------------
  function draftKey() { return "webchat:draft:" + (conversation || "new"); }
  function draftSave() {
    // While a question is being edited the box holds that question, not a draft: a save
    // then (the typing timer of the message just sent, firing late) would bring it back
    // as the draft when the edit is cancelled.
    if (editing) return;
    try {
      if (content.value) localStorage.setItem(draftKey(), content.value); else localStorage.removeItem(draftKey());
    } catch (error) { /* storage full or off: the box still has it */ }
  }
  function draftClear(key) { try { localStorage.removeItem(key); } catch (error) { /* see above */ } }
  function draftRestore() {
    try { var saved = localStorage.getItem(draftKey()); if (saved && !content.value) content.value = saved; } catch (error) { /* ignore */ }
  }

  // ---- Page state ---------------------------------------------------------------------
  function showError(text) {
    // A refusal that names the usage page ("Details: /usage/") links it.
    var details = document.getElementById("quota-details");
    var path = details ? details.getAttribute("href") : "";
    var at = path && text ? text.lastIndexOf(path) : -1;
    if (at >= 0) {
      var link = document.createElement("a");
      link.href = path;
      link.textContent = path;
      errorBox.replaceChildren(text.slice(0, at), link, text.slice(at + path.length));
    } else {
      errorBox.textContent = text;
    }
    errorBox.hidden = !text;
  }

  function setBusy(value) {
    busy = value;
    // The control about to hide (Send, then Stop) or be disabled (Regenerate) hands the
    // focus to the box: a keyboard was left on the page's body, twenty Tabs from it.
    var active = document.activeElement;
    if (value ? active === sendButton || (regenerate && active === regenerate) : active === stopButton) {
      content.focus();
    }
    // Send becomes Stop while a reply is on its way; the box stays editable for the next one.
    sendButton.hidden = value;
    stopButton.hidden = !value;
    if (regenerate) regenerate.disabled = value;
  }

  function addMessage(role, text) {
    var hint = document.getElementById("chat-hint");
    if (hint) hint.remove();
    var article = document.createElement("article");
    article.className = "msg msg-" + role;
    var body = document.createElement("div");
    body.className = "msg-body";
    body.textContent = text;
    article.appendChild(body);
    messages.appendChild(article);
    return {article: article, body: body, text: "", scheduled: false};
  }

  // ---- Branches: the page shows one; a new question follows its last message ----------
  function shownArticles() { return Array.prototype.slice.call(messages.querySelectorAll("article.msg[data-message]")); }
  function lastShownId(role) {
    var articles = shownArticles().filter(function (a) { return !role || a.classList.contains("msg-" + role); });
    return articles.length ? Number(articles[articles.length - 1].dataset.message) : null;
  }
  // Take `article` and every message after it off the page (a new version takes their place);
  // put back if the server refuses.
  function detachFrom(article) {
    var removed = [];
    for (var node = article; node; node = node.nextElementSibling) if (node.matches("article.msg")) removed.push(node);
    removed.forEach(function (node) { node.remove(); });
    return removed;
  }
  function addEditButton(article) {
    if (!article.dataset.message || article.querySelector(".msg-edit")) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "msg-edit link-button";
    button.textContent = labels.labelEdit;
    button.addEventListener("click", function () { startEditing(article); });
    var tools = article.querySelector(".msg-tools");
    if (!tools) {
      tools = document.createElement("div");
      tools.className = "msg-tools";
      article.appendChild(tools);
    }
    tools.appendChild(button);
  }
  function startEditing(article) {
    if (busy) return;
    if (editing) editing.classList.remove("editing");
    editing = article;
    article.classList.add("editing");
    content.value = article.querySelector(".msg-body").textContent;
    editingBar.hidden = false;
    content.focus();
  }
  function stopEditing() {
    if (editing) editing.classList.remove("editing");
    editing = null;
    editingBar.hidden = true;
  }
  function cancelEditing() {
    stopEditing();
    content.value = "";
    draftRestore();
    content.focus();
  }
  document.getElementById("editing-cancel").addEventListener("click", cancelEditing);

  function replaceWithServer(article, html) {
    // The server's rendering of the saved message, sanitised there (rendering.py): the same
    // HTML a reload shows.
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    var fresh = template.content.firstElementChild;
    if (!fresh) return article;
    article.replaceWith(fresh);
    decorate(fresh);
    return fresh;
  }

  function decorate(root) {
    // What the server's messages get in the browser: code tools, Edit buttons under the
    // questions inside `root`, typeset math. On page start, after a versions switch and on
    // each message the server renders again.
    root.querySelectorAll(".msg-body.rendered").forEach(addCodeTools);
    root.querySelectorAll("article.msg-user[data-message]").forEach(addEditButton);
    typesetMath(root);
  }

  function announce(text) {
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function rememberConversation(id) {
    if (conversation === id) return;
    var oldKey = draftKey();
    conversation = id;
    chat.dataset.conversation = String(id);
    draftClear(oldKey);
    var url = chat.dataset.conversationUrl.replace(/0\/$/, id + "/");
    history.replaceState(null, "", url);
    var empty = document.getElementById("no-conversations");
    if (empty) empty.remove();
    list.querySelectorAll("li.active").forEach(function (li) { li.classList.remove("active"); });
    var item = document.createElement("li");
    item.className = "active";
    var link = document.createElement("a");
    link.href = url;
    link.setAttribute("aria-current", "page");
    link.textContent = pendingTitle;
    item.appendChild(link);
    // Into the list's "Today" group (made if the list has none yet).
    var today = list.querySelector('.conversation-group[data-group="today"] > ul');
    if (!today) {
      var group = document.createElement("li");
      group.className = "conversation-group";
      group.dataset.group = "today";
      var heading = document.createElement("h2");
      heading.className = "group-label";
      heading.textContent = labels.labelToday;
      today = document.createElement("ul");
      group.append(heading, today);
      list.prepend(group);
    }
    today.prepend(item);
    if (regenerate) regenerate.hidden = false;
    var tools = document.getElementById("conversation-tools");
    tools.querySelectorAll("form").forEach(function (toolForm) {
      toolForm.action = toolForm.getAttribute("action").replace("/c/0/", "/c/" + id + "/");
    });
    document.getElementById("title").value = pendingTitle;
    tools.hidden = false;
  }

  function updateMeter(quota) {
    var meter = document.getElementById("quota-meter");
    if (!meter || !quota) return;
    var parts = [];
    if (quota.token_limit !== null) parts.push(fill(meter.dataset.labelTokens, {used: quota.tokens_used, limit: quota.token_limit}));
    if (quota.cost_limit !== null) parts.push(fill(meter.dataset.labelCost, {used: quota.cost_used, limit: quota.cost_limit, currency: quota.currency}));
    if (!parts.length) parts.push(fill(meter.dataset.labelUnlimited, {used: quota.tokens_used}));
    document.getElementById("quota-text").textContent = parts.join(" · ");
    document.getElementById("quota-fill").setAttribute("width", quota.percent_used);  // an SVG rect, 0..100
    meter.classList.toggle("full", quota.percent_used >= 100);
  }

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return String(values[key]); });
  }

  function finishReply(frame) {
    var article = current.article;
    if (current.question && typeof frame.question_html === "string" && frame.question_html) {
      addEditButton(replaceWithServer(current.question, frame.question_html)); // with its versions
    }
    article.classList.remove("streaming");
    article.removeAttribute("aria-busy");
    if (typeof frame.message_html === "string") {
      article = replaceWithServer(article, frame.message_html);
    } else {
      renderLive(current);
      if (frame.type === "chat.error") article.classList.add("status-failed"); // a fault outside the reply
    }
    var body = article.querySelector(".msg-body");
    var error = article.querySelector(".error-text");
    announce(labels.labelReplyDone + " " + (body ? body.innerText : "") + (error ? " " + error.textContent : ""));
    current = null;
    followIfAtBottom();
  }

  var handlers = {
    "chat.started": function (frame) {
      var taken = pending;
      pending = null;
      rememberConversation(frame.conversation);
      // Taken: the stored draft is now what the box holds (empty, or a follow-up being typed).
      if (taken && !taken.regenerate) draftSave();
      if (taken && taken.article) {
        taken.article.classList.remove("pending");
        if (frame.question) { taken.article.dataset.message = frame.question; addEditButton(taken.article); }
      }
      current = addMessage("assistant", "");
      current.question = taken ? taken.article : null;
      current.article.dataset.message = frame.message;
      current.article.classList.add("streaming");
      current.article.setAttribute("aria-busy", "true");
      followIfAtBottom();
    },
    "chat.delta": function (frame) {
      if (!current) return;
      current.text += frame.text;
      scheduleRender(current);
    },
    "chat.done": function (frame) {
      updateMeter(frame.quota);
      if (current) finishReply(frame);
      setBusy(false);
    },
    "chat.error": function (frame) {
      updateMeter(frame.quota);
      showError(frame.message);
      if (current) {
        finishReply(frame);
      } else if (pending) {
        // Refused before the server took it: the message was never sent. Its bubble goes
        // and its text comes back to the box (ahead of anything typed since).
        if (pending.article) pending.article.remove();
        (pending.removed || []).forEach(function (node) { messages.appendChild(node); });
        if (!pending.regenerate) {
          content.value = content.value ? pending.text + "\n" + content.value : pending.text;
          draftSave();
        }
        // A model no longer offered (the teacher switched it off while the page was open)
        // leaves the menu, so the next send goes to one that is.
        var gone = frame.code === "model_not_allowed" && model.options.length > 1 &&
          Array.prototype.find.call(model.options, function (option) { return option.value === pending.model; });
        if (gone) {
          gone.remove();
          model.dispatchEvent(new Event("change"));
        }
        pending = null;
        content.focus();
      }
      setBusy(false);
    }
  };

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/chat/");
    socket.addEventListener("open", function () { showError(""); chat.dataset.connected = "true"; });
    socket.addEventListener("message", function (event) {
      var frame = JSON.parse(event.data);
      var handler = handlers[frame.type];
      if (handler) handler(frame);
    });
    socket.addEventListener("close", function (event) {
      chat.dataset.connected = "false";
      // 4401: signed out (logged out, new password, account switched off); 4403: the class
      // was archived or left. A reload shows the login page, or what is left.
      if (event.code === 4401 || event.code === 4403) { location.reload(); return; }
      if (pending) handlers["chat.error"]({type: "chat.error", message: labels.labelDisconnected});
      if (current) {
        current.article.classList.remove("streaming");
        current.article.removeAttribute("aria-busy");
        current = null;
      }
      setBusy(false);
      // 4429: open in too many tabs. The chat.error before the close says so; try later.
      if (event.code === 4429) { setTimeout(connect, 15000); return; }
      showError(labels.labelDisconnected);
      setTimeout(connect, 2000);
    });
  }

  function socketOpen() { return socket && socket.readyState === WebSocket.OPEN; }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return; // a reply is on its way: the text waits in the box
    var text = content.value.trim();
    if (!text) return;
    if (!socketOpen()) { showError(labels.labelNotConnected); return; }
    showError("");
    pendingTitle = text.slice(0, 60);
    var frame = {type: "chat.send", conversation: conversation, model: model.value, content: text};
    var removed = [];
    if (editing && conversation) {
      // A new version of the question: it and what follows it leave the page.
      frame = {type: "chat.edit", conversation: conversation, message: Number(editing.dataset.message), model: model.value, content: text};
      removed = detachFrom(editing);
    } else if (conversation && lastShownId()) {
      frame.after = lastShownId(); // the branch on the page, whichever version it shows
    }
    stopEditing();
    var bubble = addMessage("user", text);
    bubble.article.classList.add("pending");
    pending = {text: content.value, article: bubble.article, regenerate: false, removed: removed, model: model.value};
    socket.send(JSON.stringify(frame));
    clearTimeout(draftTimer); // what was typed is sent: no late save of it
    content.value = ""; // the draft stays stored until the server takes the message
    toBottom();
    setBusy(true);
  });

  content.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && editing) { event.preventDefault(); cancelEditing(); return; }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (!busy) form.requestSubmit();
    }
  });
  var draftTimer = null;
  content.addEventListener("input", function () {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(draftSave, 300);
  });
  window.addEventListener("pagehide", draftSave);

  stopButton.addEventListener("click", function () {
    if (socketOpen()) socket.send(JSON.stringify({type: "chat.stop"}));
  });

  if (regenerate) {
    regenerate.addEventListener("click", function () {
      if (busy || !conversation) return;
      if (!socketOpen()) { showError(labels.labelNotConnected); return; }
      showError("");
      var frame = {type: "chat.regenerate", conversation: conversation, model: model.value};
      var question = lastShownId("user");
      var removed = [];
      if (question) {
        frame.message = question;
        // The reply shown now makes way for the new version (the switcher brings it back).
        var asked = messages.querySelector('article.msg-user[data-message="' + question + '"]');
        if (asked && asked.nextElementSibling) removed = detachFrom(asked.nextElementSibling);
      }
      pending = {text: "", article: null, regenerate: true, removed: removed, model: model.value};
      socket.send(JSON.stringify(frame));
      setBusy(true);
    });
  }

  // ---- Versions: the switcher shows another version in place --------------------------
  // The branch through it comes from the server (the page at ?at=, its messages only: the
  // same rendering a reload shows), and a POST asks the server to remember it as where this
  // conversation opens (a GET changes nothing). The version switched stays where it was on
  // the screen. While a reply streams the links are plain links; if the fetch fails, so are they.
  function remember(messageId) {
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    var match = /\/c\/(\d+)\//.exec(location.pathname);
    if (!token || !match) return;
    var body = new URLSearchParams({message: messageId});
    fetch("/c/" + match[1] + "/shown/", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": token.value}, body: body,
    }).catch(function () {});  // only where it opens next time: nothing to tell the student
  }
  messages.addEventListener("click", function (event) {
    var link = event.target.closest(".versions a[href]");
    if (!link || busy || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    var article = link.closest("article.msg");
    var wanted = /[?&]at=(\d+)/.exec(link.getAttribute("href"));
    if (!article || !wanted) return;
    event.preventDefault();
    var top = article.getBoundingClientRect().top;
    var direction = link.classList.contains("version-prev") ? "prev" : "next";
    fetch(link.href, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("messages");
      if (!fresh) throw new Error("no messages in the page");
      if (editing) { stopEditing(); draftRestore(); }
      messages.replaceChildren.apply(messages, Array.prototype.map.call(fresh.childNodes, function (node) {
        return document.importNode(node, true);
      }));
      decorate(messages);
      history.replaceState(null, "", link.href);
      remember(wanted[1]);
      var shown = messages.querySelector('article.msg[data-message="' + wanted[1] + '"]');
      if (!shown) return;
      messages.scrollTop += shown.getBoundingClientRect().top - top;
      atBottom = nearBottom();
      jumpButton.hidden = atBottom;
      // Keyboard users stay on the switcher they pressed (or its other arrow, at an end).
      var again = shown.querySelector(".versions a.version-" + direction) || shown.querySelector(".versions a");
      if (again) again.focus({ preventScroll: true });
    }).catch(function () { location.href = link.href; });
  });

  // ---- Drawer ----------------------------------------------------------------------------------------
  var layout = document.querySelector(".chat-layout");
  var drawerToggle = document.getElementById("drawer-toggle");
  var backdrop = document.getElementById("drawer-backdrop");
  function setDrawer(open) {
    layout.classList.toggle("drawer-open", open);
    drawerToggle.setAttribute("aria-expanded", String(open));
    backdrop.hidden = !open;
    if (open) document.getElementById("search").focus();
  }
  drawerToggle.addEventListener("click", function () { setDrawer(!layout.classList.contains("drawer-open")); });
  backdrop.addEventListener("click", function () { setDrawer(false); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && layout.classList.contains("drawer-open")) { setDrawer(false); drawerToggle.focus(); }
  });


  // ---- Undo a delete: offered for a few seconds; a reload does not offer it again -------
  var undo = document.getElementById("undo-delete");
  if (undo) {
    history.replaceState(null, "", location.pathname);
    setTimeout(function () { if (!undo.contains(document.activeElement)) undo.remove(); }, 10000);
  }

  // ---- Start --------------------------------------------------------------------------
  decorate(messages);
  draftRestore();
  // A conversation opens at its latest reply; after a versions switch (?at=), at that version.
  var shownAt = /[?&]at=(\d+)/.exec(location.search);
  var atArticle = shownAt && messages.querySelector('article.msg[data-message="' + shownAt[1] + '"]');
  if (atArticle) atArticle.scrollIntoView({block: "center"}); else toBottom();
  content.focus({preventScroll: true});
  connect();
})();
