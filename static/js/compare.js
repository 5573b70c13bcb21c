// Side by side (/compare/): one question to several models over the chat websocket
// (compare.send). Each lane streams as plain text, then the server's own rendering of the
// saved message (its Markdown, footer, tokens and cost) takes its place, as on reload.
const form = document.getElementById("compare-form");
if (form) {
  const labels = form.dataset;
  const lanesBox = document.getElementById("lanes");
  const errorBox = document.getElementById("compare-error");
  const button = document.getElementById("compare-send");
  const content = document.getElementById("compare-content");
  const announcer = document.getElementById("compare-announcer");
  const maxLanes = Number(labels.max);
  let socket = null;
  let running = false;
  let lanes = [];

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function chosen() {
    return Array.from(form.querySelectorAll('input[name="models"]:checked'));
  }

  function setRunning(value) {
    running = value;
    button.textContent = value ? labels.labelStop : labels.labelCompare;
  }

  function laneFor(box, title) {
    const article = document.createElement("article");
    article.className = "lane";
    article.setAttribute("aria-busy", "true");
    const heading = document.createElement("h2");
    heading.textContent = title;
    const body = document.createElement("div");
    body.className = "lane-body";
    body.textContent = labels.labelWaiting;
    const facts = document.createElement("p");
    facts.className = "lane-facts";
    // Stop this model alone (a slow or rambling one); the others go on.
    const stop = document.createElement("button");
    stop.type = "button";
    stop.className = "lane-stop";
    stop.textContent = labels.labelStop;
    stop.setAttribute("aria-label", labels.labelStop + ": " + title);
    const index = box.children.length;  // the lane's place: the server numbers lanes alike
    stop.addEventListener("click", () => {
      stop.disabled = true;
      socket && socket.send(JSON.stringify({type: "chat.stop", lane: index}));
    });
    facts.append(stop);
    article.append(heading, body, facts);
    box.append(article);
    return {article, body, facts, stop, text: "", sent: performance.now(), conversation: null};
  }

  function open() {
    return new Promise((resolve, reject) => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        resolve(socket);
        return;
      }
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + labels.socket);
      socket.addEventListener("open", () => resolve(socket), {once: true});
      socket.addEventListener("error", () => reject(new Error("socket")), {once: true});
      socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
      socket.addEventListener("close", () => {
        if (running) {
          showError(labels.labelLost);
          setRunning(false);
        }
      });
    });
  }

  function receive(frame) {
    const lane = typeof frame.lane === "number" ? lanes[frame.lane] : null;
    if (frame.type === "chat.started" && lane) {
      lane.conversation = frame.conversation;
      lane.body.textContent = "";
    } else if (frame.type === "chat.delta" && lane) {
      lane.text += frame.text;
      lane.body.textContent = lane.text;
    } else if ((frame.type === "chat.done" || frame.type === "chat.error") && lane) {
      finish(lane, frame);
    } else if (frame.type === "chat.error") {
      // The whole comparison was refused: nothing was written, the question stays in the box.
      lanesBox.replaceChildren();
      lanes = [];
      showError(frame.message);
      setRunning(false);
    } else if (frame.type === "compare.done") {
      setRunning(false);
      announcer.textContent = lanes.map((l) => l.article.querySelector("h2").textContent).join(", ");
    }
  }

  function finish(lane, frame) {
    const seconds = ((performance.now() - lane.sent) / 1000).toFixed(1);
    if (frame.message_html) {
      // The server's rendering of the saved message (sanitised there): as after a reload.
      const holder = document.createElement("div");
      holder.innerHTML = frame.message_html;
      lane.body.replaceChildren(...holder.childNodes);
      lane.body.style.whiteSpace = "normal";
      if (window.webchatMath) window.webchatMath.typeset(lane.body);
    } else if (frame.type === "chat.error") {
      lane.body.textContent = frame.message;
    }
    lane.stop.remove();
    lane.facts.textContent = labels.labelTotal.replace("%(seconds)s", seconds) + " ";
    if (lane.conversation) {
      const link = document.createElement("a");
      link.href = "/c/" + lane.conversation + "/";
      link.textContent = labels.labelContinue;
      lane.facts.append(link);
    }
    lane.article.setAttribute("aria-busy", "false");
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (running) {
      socket && socket.send(JSON.stringify({type: "chat.stop"}));
      return;
    }
    const picked = chosen();
    if (picked.length < 2 || picked.length > maxLanes) {
      showError(labels.labelPick);
      return;
    }
    if (!content.value.trim()) {
      content.focus();
      return;
    }
    showError("");
    try {
      await open();
    } catch (error) {
      showError(labels.labelLost);
      return;
    }
    lanesBox.replaceChildren();
    lanes = picked.map((box) => laneFor(lanesBox, box.dataset.label));
    setRunning(true);
    socket.send(JSON.stringify({
      type: "compare.send",
      conversation: null,
      models: picked.map((box) => box.value),
      content: content.value,
    }));
  });
}
