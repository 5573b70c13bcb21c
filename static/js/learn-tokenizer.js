// The tokenizer page: after each pause in typing, POST the text and the model to
// /learn/tokenizer/count and show its tokens, count and cost. Token text goes into the page
// with textContent only. The page's labels come from the form's data-label-* attributes,
// written by the template in the page's language.
"use strict";

const form = document.getElementById("tokenizer");
const textBox = document.getElementById("tok-text");
const modelBox = document.getElementById("tok-model");
const errorBox = document.getElementById("tok-error");
const tokensBox = document.getElementById("tok-tokens");
const detailBox = document.getElementById("tok-detail");
const labels = form.dataset;
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const DEBOUNCE_MS = 300;
let timer = null;
let inFlight = null;

function setText(id, value) {
  document.getElementById(id).textContent = value;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function tokenBox(token, index) {
  const box = document.createElement("span");
  box.className = `tok tok-c${index % 6}`;
  box.textContent = token.text.replace(/\n/g, "\u21b5");  // a newline is a token too: shown as ↵
  box.tabIndex = 0;
  box.dataset.id = token.id;
  let title = `id ${token.id}`;
  if (token.partial) {
    box.classList.add("tok-partial");
    title += ` · ${labels.labelPartial}: ${token.joined}`;
  }
  box.title = title;
  box.dataset.detail = `${labels.labelToken} ${index + 1}: “${box.textContent}” · ${title}`;
  return box;
}

// A phone shows no title on a tap: the token a tap (or Tab) reaches is described below the
// boxes instead.
tokensBox.addEventListener("focusin", (event) => {
  const box = event.target.closest(".tok");
  if (box) detailBox.textContent = box.dataset.detail;
});

function show(result) {
  setText("tok-count", result.count);
  setText("tok-chars", result.characters);
  setText("tok-ratio", result.count ? (result.characters / result.count).toFixed(2) : "—");
  setText("tok-encoding", result.encoding);
  const exact = document.getElementById("tok-exact");
  exact.textContent = result.exact ? labels.labelExact : labels.labelEstimate;
  exact.dataset.exact = result.exact ? "yes" : "no";
  for (const currency of ["CNY", "USD"]) {
    const cost = result.costs[currency];
    setText(`tok-in-${currency}`, cost ? cost.input : "—");
    setText(`tok-out-${currency}`, cost ? cost.output : "—");
  }
  const price = result.price;
  setText("tok-price", price
    ? `(${price.input_per_million} / ${price.output_per_million} ${price.currency} / 1M, ${price.effective_from})`
    : `(${labels.labelNoPrice})`);
  // A line may break between tokens, never inside one; after a newline token, it does.
  detailBox.textContent = "";
  tokensBox.replaceChildren(...result.tokens.flatMap((token, index) => [
    tokenBox(token, index),
    document.createElement(token.text.includes("\n") ? "br" : "wbr"),
  ]));
}

async function count() {
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  let response;
  try {
    response = await fetch(form.dataset.countUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ text: textBox.value, model: modelBox.value }),
      credentials: "same-origin",
      signal: inFlight.signal,
    });
  } catch (error) {
    if (error.name !== "AbortError") showError(labels.labelFailed);
    return;
  }
  if (response.status === 429) {
    const wait = Number(response.headers.get("Retry-After")) || 5;
    showError(`${labels.labelWaiting} ${wait} s`);
    schedule(wait * 1000);
    return;
  }
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    showError(body && body.error ? body.error.message : labels.labelFailed);
    return;
  }
  showError("");
  show(body);
}

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(timer);
  timer = setTimeout(count, delay);
}

textBox.addEventListener("input", () => schedule());
modelBox.addEventListener("change", () => schedule(0));
form.addEventListener("submit", (event) => event.preventDefault());
schedule(0);
