// The console's one way to the API: same-origin requests authenticated by the session cookie.
// Requests that change something carry X-Switchboard-Console: 1, which the API demands of
// cookie-authenticated writes (another site's page cannot send it). A 401 means the session is
// over: back to the login page, then here again.

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `the API answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function toLogin() {
  location.assign(`/console/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-switchboard-console"] = "1";
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (response.status === 401) {
    toLogin();
    throw new ApiFailure(401, { message: "signed out" });
  }
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiFailure(response.status, parsed);
  return parsed;
}

export async function signOut() {
  await fetch("/console/logout", { method: "POST", headers: { "x-switchboard-console": "1" }, credentials: "same-origin" }).catch(() => undefined);
  location.assign("/console/login");
}

/** An element with attributes and children; strings become text (never HTML). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return element;
}

export const percent = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)} %`);
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
