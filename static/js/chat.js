// The chat page: one websocket, replies streamed in as plain text (textContent only).
(function () {
  "use strict";
  var chat = document.getElementById("chat");
  var messages = document.getElementById("messages");
  var form = document.getElementById("composer");
  var content = document.getElementById("content");
  var model = document.getElementById("model");
  var sendButton = document.getElementById("send");
  var stopButton = document.getElementById("stop");
  var errorBox = document.getElementById("chat-error");
  var list = document.getElementById("conversation-list");
  var conversation = chat.dataset.conversation ? Number(chat.dataset.conversation) : null;
  var socket = null;
  var current = null; // the reply being streamed: {article, body}
  var pendingTitle = "";

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return String(values[key]); });
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    stopButton.hidden = !busy;
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
    article.scrollIntoView({block: "end"});
    return {article: article, body: body};
  }

  function addCopyButtons(root) {
    root.querySelectorAll("pre").forEach(function (pre) {
      if (pre.parentNode.querySelector(":scope > .copy")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = chat.dataset.labelCopy;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.innerText).then(function () {
          button.textContent = chat.dataset.labelCopied;
          setTimeout(function () { button.textContent = chat.dataset.labelCopy; }, 1500);
        });
      });
      pre.parentNode.insertBefore(button, pre);
    });
  }

  function addFooter(frame) {
    var footer = document.createElement("footer");
    footer.className = "msg-meta";
    function span(text, className) {
      var el = document.createElement("span");
      el.textContent = text;
      if (className) el.className = className;
      footer.appendChild(el);
    }
    if (frame.status !== "complete") {
      span(chat.dataset["status" + frame.status.charAt(0).toUpperCase() + frame.status.slice(1)] || frame.status,
           "badge badge-" + frame.status);
    }
    if (frame.model) span(frame.model, "meta-model");
    if (frame.usage) span(fill(chat.dataset.labelInOut, {prompt: frame.usage.prompt_tokens, completion: frame.usage.completion_tokens}));
    if (frame.cost !== null && frame.cost !== undefined) span(fill(chat.dataset.labelCost, {cost: frame.cost, currency: frame.currency}));
    if (frame.first_chunk_ms !== null && frame.first_chunk_ms !== undefined) span(fill(chat.dataset.labelFirstToken, {ms: frame.first_chunk_ms}));
    if (frame.error) span(frame.error, "error-text");
    current.article.appendChild(footer);
    current.article.classList.add("status-" + frame.status);
  }

  function rememberConversation(id) {
    if (conversation === id) return;
    conversation = id;
    chat.dataset.conversation = String(id);
    var url = chat.dataset.conversationUrl.replace(/0\/$/, id + "/");
    history.replaceState(null, "", url);
    var empty = document.getElementById("no-conversations");
    if (empty) empty.remove();
    var item = document.createElement("li");
    item.className = "active";
    var link = document.createElement("a");
    link.href = url;
    link.textContent = pendingTitle;
    item.appendChild(link);
    list.prepend(item);
  }

  function updateMeter(quota) {
    var meter = document.getElementById("quota-meter");
    if (!meter || !quota) return;
    var parts = [];
    if (quota.token_limit !== null) parts.push(fill(meter.dataset.labelTokens, {used: quota.tokens_used, limit: quota.token_limit}));
    if (quota.cost_limit !== null) parts.push(fill(meter.dataset.labelCost, {used: quota.cost_used, limit: quota.cost_limit, currency: quota.currency}));
    if (parts.length) document.getElementById("quota-text").textContent = parts.join(" · ");
    document.getElementById("quota-fill").setAttribute("width", quota.percent_used);  // an SVG rect, 0..100
    meter.classList.toggle("full", quota.percent_used >= 100);
  }

  var handlers = {
    "chat.started": function (frame) {
      rememberConversation(frame.conversation);
      current = addMessage("assistant", "");
      current.article.dataset.message = frame.message;
      current.article.classList.add("streaming");
    },
    "chat.delta": function (frame) {
      if (!current) return;
      current.body.textContent += frame.text;
      current.article.scrollIntoView({block: "end"});
    },
    "chat.done": function (frame) {
      updateMeter(frame.quota);
      if (current) {
        current.article.classList.remove("streaming");
        if (typeof frame.html === "string") {
          // Finished: the server's rendering (Markdown, sanitised there) replaces the plain text.
          current.body.innerHTML = frame.html;
          current.body.classList.add("rendered");
          addCopyButtons(current.body);
        }
        addFooter(frame);
      }
      current = null;
      setBusy(false);
    },
    "chat.error": function (frame) {
      updateMeter(frame.quota);
      showError(frame.message);
      if (current) {
        current.article.classList.remove("streaming");
        current.article.classList.add("status-failed");
      }
      current = null;
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
      if (current) { setBusy(false); current = null; }
      // 4429: open in too many tabs. The chat.error before the close says so; try later.
      if (event.code === 4429) { setTimeout(connect, 15000); return; }
      showError(chat.dataset.labelDisconnected);
      setTimeout(connect, 2000);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = content.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    showError("");
    pendingTitle = text.slice(0, 60);
    addMessage("user", text);
    socket.send(JSON.stringify({type: "chat.send", conversation: conversation, model: model.value, content: text}));
    content.value = "";
    setBusy(true);
  });

  content.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", function () {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "chat.stop"}));
  });

  document.querySelectorAll(".msg-body.rendered").forEach(addCopyButtons);

  var regenerate = document.getElementById("regenerate");
  if (regenerate) {
    regenerate.addEventListener("click", function () {
      if (!conversation || !socket || socket.readyState !== WebSocket.OPEN) return;
      showError("");
      socket.send(JSON.stringify({type: "chat.regenerate", conversation: conversation, model: model.value}));
      setBusy(true);
    });
  }

  connect();
})();
