// The quota meter's held and left figures. chat.js rewrites the meter's text and bar from
// each finished turn's frame; when it does, this asks the server for the rest (what running
// replies hold, what is left) and writes it with textContent.
const meter = document.getElementById("quota-meter");
const bar = document.getElementById("quota-fill");

function fill(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
}

function show(quota) {
  const labels = meter.dataset;
  const held = document.getElementById("quota-held");
  const left = document.getElementById("quota-left");
  const byTokens = quota.token_limit !== null || quota.cost_limit === null;
  held.textContent = "· " + (byTokens
    ? fill(labels.labelHeldTokens, {held: quota.tokens_held})
    : fill(labels.labelHeldCost, {held: quota.cost_held, currency: quota.currency}));
  held.hidden = quota.tokens_held === 0 && Number(quota.cost_held) === 0;
  if (left) {
    const parts = [];
    if (quota.token_limit !== null) parts.push(fill(labels.labelLeftTokens, {left: quota.tokens_left}));
    if (quota.cost_limit !== null) parts.push(fill(labels.labelLeftCost, {left: quota.cost_left, currency: quota.currency}));
    left.textContent = "· " + parts.join(" · ");
  }
  document.getElementById("quota-fill-used").setAttribute("width", quota.percent_settled);
}

let waiting = false;

async function refresh() {
  waiting = false;
  const response = await fetch(meter.dataset.quotaUrl, {headers: {Accept: "application/json"}, credentials: "same-origin"});
  if (response.ok) show(await response.json());
}

if (meter && bar && meter.dataset.quotaUrl) {
  new MutationObserver(() => {
    if (waiting) return;
    waiting = true;
    setTimeout(refresh, 0);  // one request for chat.js's several changes
  }).observe(bar, {attributes: true, attributeFilter: ["width"]});
}
