// Talking to bcd: the token from the page's address goes on every request; failures become ApiError with
// the HTTP status and bcd's own message, so the page can explain them.
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

const params = new URLSearchParams(location.search);
export const token = params.get("token");

export function apiUrl(path, query = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v != null && v !== "") q.set(k, v);
  if (token) q.set("token", token);
  const s = q.toString();
  return `../api/v1/${path}${s ? "?" + s : ""}`;
}

export async function getJson(path, query) {
  let r;
  try {
    r = await fetch(apiUrl(path, query), { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new ApiError(0, "bcd cannot be reached (" + e.message + ")");
  }
  let body = null;
  try { body = await r.json(); } catch { /* not JSON: handled below */ }
  if (!r.ok) throw new ApiError(r.status, (body && body.error) || r.statusText || "request failed");
  if (body == null) throw new ApiError(r.status, "bcd sent something that is not JSON");
  return body;
}

// What to tell the user for a refused or failed request: [title, text, help].
export function explain(err, container) {
  const msg = err.message || String(err);
  if (err.status === 401 && !token)
    return ["This link has no access token",
      "The job view needs the token that came with its link (…index.html?container=job_42&token=…).",
      "Ask for a new link, e.g. from your site's job notification or `bcadm token --job ID`."];
  if (err.status === 401 && /expired/i.test(msg))
    return ["This link has expired", msg, "Links carry an expiry; ask for a new one."];
  if (err.status === 401)
    return ["This link's token is not valid", msg, "The token may be damaged or made with another key; ask for a new link."];
  if (err.status === 403)
    return ["This link does not open this job", msg,
      `A token opens one job only; this one cannot open ${container || "this page"}.`];
  if (err.status === 404) return ["No such job", msg, "The job may not have been monitored, or its data has expired."];
  if (err.status === 400) return ["This address is not a job view", msg, "Use index.html?container=job_42&token=…"];
  if (err.status === 0) return ["bcd cannot be reached", msg, "Check that bcd is running, then reload."];
  return ["Something went wrong", msg, `HTTP status ${err.status}`];
}

export function showError(title, text, help = "") {
  document.getElementById("main")?.setAttribute("hidden", "");
  document.getElementById("error-title").textContent = title;
  document.getElementById("error-text").textContent = text;
  document.getElementById("error-help").textContent = help;
  document.getElementById("error").hidden = false;
  const t = document.getElementById("title");
  if (t) t.textContent = "";
  document.title = "bubble-chamber: " + title;
}

// Never a blank page: anything unexpected ends on the error panel.
export function catchAll() {
  const fail = (e) => showError("The page failed", String((e && (e.message || e.reason)) || e), "Reloading may help.");
  addEventListener("error", (e) => fail(e.error || e.message));
  addEventListener("unhandledrejection", (e) => fail(e.reason));
}
