// The job list: the caller's own jobs (all of them for admins), each linking to its job view.
import { ApiError, catchAll, getJson, showError, token } from "./api.js";
import { el, seconds, size, time } from "./format.js";
import { Table } from "./table.js";

catchAll();
const table = new Table(document.getElementById("jobs"), {
  label: "jobs", empty: "No jobs.",
  columns: [
    { key: "container", label: "job" }, { key: "user", label: "user" }, { key: "state", label: "state" },
    { key: "start", label: "start", format: (v) => time(v) }, { key: "end", label: "end", format: (v) => time(v) },
    { key: "cpu_seconds", label: "CPU", num: true, format: (v) => seconds(v) },
    { key: "max_rss_bytes", label: "MaxRSS", num: true, format: (v) => size(v) },
  ],
});
// Job ids become links to the job view (the table renders text; the links are added after each render).
const render = table.render.bind(table);
table.render = () => {
  render();
  for (const td of table.body.querySelectorAll("tr td:first-child")) {
    const id = td.textContent;
    if (!id || td.colSpan > 1) continue;
    const q = new URLSearchParams({ container: id });
    if (token) q.set("token", token);
    td.replaceChildren(el("a", { href: "index.html?" + q.toString(), text: id }));
  }
};

async function load() {
  const state = document.getElementById("state").value;
  const list = await getJson("jobs", { state });
  table.setRows(list.jobs);
  document.getElementById("count").textContent = `(${list.jobs.length})`;
  document.getElementById("main").hidden = false;
  document.body.dataset.ready = "true";
}

function fail(err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403))
    showError("The job list needs to know who you are", err.message,
      "Open a job from the link you were given (index.html?container=job_42&token=…), or run bcacct on a login node. " +
      "Sites that run bcd with AUTH_DISABLE=yes show every job here.");
  else showError("The job list failed", err.message || String(err), "");
}

document.getElementById("state").addEventListener("change", () => load().catch(fail));
load().catch(fail);
