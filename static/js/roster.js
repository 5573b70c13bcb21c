// The roster import and the password reset: the passwords file downloads and the page
// reloads at once, so the roster shows the server's "Imported N students" or "N passwords
// were reset" (and no box left ticked to reset twice) instead of the page as it was. A
// refused request falls back to a plain submit, whose page says why (a refused import or
// reset writes nothing, so sending it twice changes nothing).

function filenameOf(response) {
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : "passwords.csv";
}

for (const form of [document.getElementById("roster-import"), document.getElementById("roster-form")]) {
  if (!form) continue;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.submitter || form.querySelector("button[type=submit]");
    button.disabled = true;
    const old = document.getElementById("roster-problems");
    if (old) old.remove();
    let response;
    try {
      response = await fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin"});
    } catch (error) {
      form.submit();
      return;
    }
    if (!response.ok || !(response.headers.get("Content-Type") || "").startsWith("text/csv")) {
      form.submit();
      return;
    }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = filenameOf(response);
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => { location.assign(form.dataset.rosterUrl || location.pathname); }, 400);  // the roster, with the result
  });
}

// A refused import's problems are listed in the import card, at the page's foot: on a phone
// the page came back at its top, and nothing in view said the import had failed.
const problems = document.getElementById("roster-problems");
if (problems) {
  problems.tabIndex = -1;
  problems.scrollIntoView({block: "start"});
  problems.focus({preventScroll: true});
}
