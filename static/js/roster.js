// The roster import: the passwords file downloads and the page reloads at once, so the
// roster shows the new students and the server's "Imported N students" instead of the
// previous attempt's error. A refused file falls back to a plain submit, whose page lists
// the problems (a refused import writes nothing, so sending it twice changes nothing).
const form = document.getElementById("roster-import");

function filenameOf(response) {
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : "passwords.csv";
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
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
    setTimeout(() => { location.assign(form.dataset.rosterUrl); }, 400);  // the roster, with the result
  });
}
