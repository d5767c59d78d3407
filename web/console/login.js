// Exchanges the API key for the console's session cookie, then goes where the agent was headed.
const form = document.getElementById("login-form");
const input = document.getElementById("api-key");
const error = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

/** Only a console page of this site (or the status page): a `next` elsewhere would make the login page an open redirect. */
function destination() {
  const next = new URLSearchParams(location.search).get("next");
  return next && /^\/(console|status)(\/|$|\?)/.test(next) && !next.startsWith("//") ? next : "/console";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const key = input.value.trim();
  if (!key) {
    error.textContent = "Enter an API key.";
    error.hidden = false;
    input.focus();
    return;
  }
  submit.disabled = true;
  try {
    const response = await fetch("/console/login", {
      method: "POST",
      headers: { "content-type": "application/json", "x-switchboard-console": "1" },
      body: JSON.stringify({ api_key: key }),
      credentials: "same-origin",
    });
    if (response.status === 204) {
      location.assign(destination());
      return;
    }
    const body = await response.json().catch(() => ({}));
    error.textContent = body.message ?? `Sign-in failed (${response.status}).`;
  } catch (failure) {
    error.textContent = `The API did not answer: ${failure.message}`;
  } finally {
    submit.disabled = false;
  }
  error.hidden = false;
  input.select();
});
