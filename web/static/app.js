// The job view: index.html?container=job_42&token=… (a Docker container's id works in place of job_42).
// Header from GET /jobs/{id}, charts from /series, the tree from /tree, tables from /files and
// /connections, and one Server-Sent Events stream while the job runs (no polling).
import { ApiError, apiUrl, catchAll, explain, getJson, showError } from "./api.js";
import { Chart, OTHER_COLOR, colorFor } from "./charts.js";
import { duration, el, percent, seconds, size, time } from "./format.js";
import { Table } from "./table.js";
import { ProcessTree } from "./tree.js";

catchAll();
const params = new URLSearchParams(location.search);
const container = params.get("container");
const seriesPath = `jobs/${encodeURIComponent(container)}/series`;
const state = {
  doc: null, running: false, selected: params.get("proc"), res: params.get("res") || "auto",
  from: num(params.get("from")), to: num(params.get("to")), top: num(params.get("top")) || 8,
  group: params.get("group") === "task" ? "task" : "process",
  data: null, stream: null, lastRefetch: 0, lastGpuRefetch: 0,
};
const $ = (id) => document.getElementById(id);

function num(v) { return v == null || v === "" || Number.isNaN(Number(v)) ? null : Number(v); }

// The window, the resolution, the top N and the selected process live in the address.
function saveUrl() {
  const p = new URLSearchParams(location.search);
  const set = (k, v) => (v == null || v === "" ? p.delete(k) : p.set(k, v));
  set("from", state.from); set("to", state.to); set("res", state.res === "auto" ? null : state.res);
  set("proc", state.selected); set("top", state.top === 8 ? null : state.top);
  set("group", state.group === "task" ? "task" : null);
  history.replaceState(null, "", "?" + p.toString());
}

// ---------------------------------------------------------------- header

function summary(doc) {
  // The job model's totals (accounting_db/job_model.cpp), as bcacct --json has them; the node records add
  // what only a node knows (a container's name).
  const j = doc.job, recs = doc.node_records || [];
  const startMs = j.start ? Date.parse(j.start) : null, endMs = j.end ? Date.parse(j.end) : null;
  const elapsed = startMs ? ((endMs || Date.now()) - startMs) / 1000 : null;
  const cpus = j.alloc_cpus;
  const memLimit = j.mem_limit_bytes || 0;
  const lost = j.lost_events;
  const unavailable = j.events_unavailable || "";
  const name = j.name || recs.map((r) => r.container_name).find(Boolean);
  const eff = j.cpu_efficiency != null ? j.cpu_efficiency * 100 : null;
  const items = [
    ["job", container + (name ? ` (${name})` : ""), container],
    ["user", j.user, j.user],
    ["nodes", (j.nodes || []).join(", "), (j.nodes || []).join(",")],
    ["state", endMs ? "completed" : "running", endMs ? "completed" : "running"],
    ["start", time(j.start), j.start],
    [endMs ? "end" : "elapsed", endMs ? time(j.end) : duration(elapsed || 0), endMs ? j.end : ""],
    ["elapsed", elapsed == null ? "–" : duration(elapsed), elapsed],
    ["cpu_seconds", seconds(j.cpu_seconds), j.cpu_seconds, "CPU time"],
    ["efficiency", eff == null ? "allocation unknown" : `${percent(eff)} of ${cpus} CPU${cpus > 1 ? "s" : ""}`,
     eff, "CPU efficiency"],
    ["max_rss_bytes", size(j.max_rss_bytes) + (memLimit ? ` of ${size(memLimit)} (${percent(100 * j.max_rss_bytes / memLimit)})` : ""),
     j.max_rss_bytes, memLimit ? "MaxRSS of requested" : "MaxRSS"],
    ["read_bytes", size(j.read_bytes), j.read_bytes, "read"],
    ["write_bytes", size(j.write_bytes), j.write_bytes, "written"],
    ["processes", String(state.treeRows ? state.treeRows.length : "…"), state.treeRows?.length, "processes"],
    ["lost_events", String(lost), lost, "lost events"],
  ];
  if (unavailable) items.push(["events_unavailable", unavailable, unavailable, "events unavailable"]);
  // Each GPU of the job (NVML): its utilisation, memory peak and power, one item each.
  for (const g of doc.gpus || []) {
    const parts = [g.util_percent == null ? "util not reported" : `${percent(g.util_percent)} busy`,
                   `memory peak ${size(g.memory_max_bytes)} of ${size(g.memory_total_bytes)}`];
    if (g.power_watts != null) parts.push(`${Math.round(g.power_watts)} W`);
    if (!g.allocated) parts.push("not allocated: a process of the job ran on it");
    items.push([`gpu:${g.uuid}`, parts.join(", "), g.util_percent, `GPU ${g.uuid.slice(0, 12)}… (${g.node})`]);
  }
  if (j.gpus_lost) items.push(["gpus_lost", `${j.gpus_lost} lost while the job ran`, j.gpus_lost, "GPUs lost"]);
  // Nodes of the allocation whose data is not all here, once the job has ended (job_model.hpp).
  const missing = (j.missing_nodes || []).map((m) =>
    m.last_data ? `${m.node} (no end recorded; data up to ${time(m.last_data)})` : `${m.node} (no data here)`);
  if (missing.length) items.push(["missing_nodes", missing.join(", "), (j.missing_nodes || []).map((m) => m.node).join(","), "missing data"]);
  const warn = new Set(["events_unavailable", "missing_nodes", "gpus_lost"]);
  const dl = $("summary");
  dl.replaceChildren(...items.map(([field, text, value, label]) =>
    el("div", { class: (field === "lost_events" && lost) || warn.has(field) ? "warn" : null },
       el("dt", { text: label || field }),
       el("dd", { "data-field": field, "data-value": value == null ? "" : String(value), text }))));
  $("title").textContent = `${container} · ${j.user}`;
  document.title = `${container} · bubble-chamber`;
}

function setLive(text, cls) {
  const p = $("live");
  p.hidden = !text;
  p.textContent = text;
  p.className = "live " + (cls || "");
}

// ---------------------------------------------------------------- charts

const zoom = (from, to) => { state.from = from; state.to = to; saveUrl(); loadSeries(); };
const charts = {
  cpu: new Chart($("chart-cpu"), { kind: "pct", onZoom: zoom }),
  rss: new Chart($("chart-rss"), { kind: "bytes", onZoom: zoom }),
  io: new Chart($("chart-io"), { kind: "rate", onZoom: zoom }),
  threads: new Chart($("chart-threads"), { kind: "count", onZoom: zoom }),
  total: new Chart($("chart-total"), { kind: "pct", rightKind: "bytes", onZoom: zoom }),
  gpu_util: new Chart($("chart-gpu-util"), { kind: "pct", rightKind: "watts", onZoom: zoom }),
  gpu_memory: new Chart($("chart-gpu-memory"), { kind: "bytes", onZoom: zoom }),
  gpu_process_memory: new Chart($("chart-gpu-process-memory"), { kind: "bytes", onZoom: zoom }),
  gpu_sm: new Chart($("chart-gpu-sm"), { kind: "pct", onZoom: zoom }),
};

// Puts several series (each {t:[], columns…}) on one time axis; missing points stay gaps.
function align(seriesList, column, scale = 1) {
  const ts = [...new Set(seriesList.flatMap((s) => s.t))].sort((a, b) => a - b);
  const index = new Map(ts.map((t, i) => [t, i]));
  const columns = seriesList.map((s) => {
    const out = new Array(ts.length).fill(null);
    const values = typeof column === "function" ? column(s) : s[column];
    s.t.forEach((t, i) => { out[index.get(t)] = values[i] == null ? null : values[i] * scale; });
    return out;
  });
  return [ts, columns];
}

const ioOf = (s) => s.read_bytes.map((r, i) => (r + s.write_bytes[i]));

function draw() {
  const d = state.data;
  if (!d) return;
  const width = d.width_s || 1;
  const lines = (list) => list.map((s, i) => ({ label: s.label, color: s.key === "other" ? OTHER_COLOR : colorFor(i) }));
  for (const [name, list, column, scale] of [["cpu", d.cpu, "cpu_percent_mean", 1], ["rss", d.rss, "rss_mean_bytes", 1],
                                             ["io", d.io, ioOf, 1 / width], ["threads", d.threads, "threads_mean", 1]]) {
    const shown = list.filter((s) => s.key !== "total");
    const [ts, cols] = align(shown, column, scale);
    charts[name].set(ts, lines(shown).map((l, i) => ({ ...l, values: cols[i] })));
    document.body.dataset[`points_${name}`] = `${ts.length}x${shown.length}`;  // read by the browser tests
    document.body.dataset[`labels_${name}`] = shown.map((s) => s.label).join("|");
  }
  drawGpus(d.gpu);
  const t = d.total;
  charts.total.set(t.t, [
    { label: "CPU %", color: colorFor(0), values: t.cpu_percent_mean },
    { label: "RSS", color: colorFor(1), scale: "right", values: t.rss_mean_bytes },
    { label: "read/s", color: colorFor(2), scale: "right", values: t.read_bytes.map((v) => v / width) },
    { label: "write/s", color: colorFor(3), scale: "right", values: t.write_bytes.map((v) => v / width) },
  ]);
  document.body.dataset.points_total = String(t.t.length);
  $("cpu-caption").textContent = byRank() && !state.selected ? "CPU per rank (% of one core)"
                                                                : "CPU per process (% of one core)";
  $("res-note").textContent = `Resolution: ${d.resolution}${state.res === "auto" ? " (automatic for this window)" : ""}.`;
  $("reset-zoom").disabled = state.from == null && state.to == null;
}

// The GPU charts, shown only for a job that had GPUs: per GPU its utilisation and power, and its memory; per
// process that used one its GPU memory and SM share. A column NVML did not give (a MIG instance's utilisation)
// stays a gap.
function drawGpus(list) {
  for (const f of document.querySelectorAll("figure.gpu")) f.hidden = !list;
  if (!list) return;
  const gpus = list.filter((s) => s.key.startsWith("gpu:")), procs = list.filter((s) => !s.key.startsWith("gpu:"));
  const column = (name) => (s) => s[name] || s.t.map(() => null);
  const plot = (name, shown, left, right = null) => {
    const [ts, cols] = align(shown, column(left));
    const lines = shown.map((s, i) => ({ label: s.label, color: colorFor(i), values: cols[i] }));
    if (right) {
      const [, rightCols] = align(shown, column(right.column));
      shown.forEach((s, i) => {
        if (s[right.column]) lines.push({ label: `${s.label} ${right.unit}`, color: colorFor(shown.length + i),
                                          scale: "right", values: rightCols[i] });
      });
    }
    charts[name].set(ts, lines);
    document.body.dataset[`points_${name}`] = `${ts.length}x${shown.length}`;  // read by the browser tests
    document.body.dataset[`labels_${name}`] = shown.map((s) => s.label).join("|");
  };
  plot("gpu_util", gpus, "busy_percent_mean", { column: "power_watts", unit: "W" });
  plot("gpu_memory", gpus, "memory_mean_bytes");
  plot("gpu_process_memory", procs, "memory_mean_bytes");
  plot("gpu_sm", procs, "busy_percent_mean");
}

// bcd sends a column equal to its twin at every bucket once, naming it in "same" (a max column at second
// resolution equals its mean), and leaves "t" out of a series with the job total's buckets: give each its
// own copy, so live points can be merged into every column.
function expand(seriesList) {
  const total = seriesList.find((s) => s.key === "total");
  for (const s of seriesList) {
    if (!s.t) s.t = total ? total.t.slice() : [];
    for (const [column, twin] of Object.entries(s.same || {})) if (s[twin]) s[column] = s[twin].slice();
  }
  return seriesList;
}

// One job total from the answers' totals (each with its metric's columns), on the first one's buckets: a
// running job may have gained a bucket between the requests. Every column is its own array.
function joinTotals(first, ...others) {
  const total = {};
  for (const [k, v] of Object.entries(first)) total[k] = Array.isArray(v) ? v.slice() : v;
  for (const o of others) {
    const at = new Map(o.t.map((t, i) => [t, i]));
    for (const [k, v] of Object.entries(o))
      if (Array.isArray(v) && !(k in total)) total[k] = first.t.map((t) => (at.has(t) ? v[at.get(t)] : null));
  }
  return total;
}

async function loadSeries() {
  // Whether the job has ranks to group by is in the tree: wait for it when it is being fetched.
  if (state.group === "task" && state.treeLoading) await state.treeLoading.catch(() => {});
  const window_ = { from: state.from, to: state.to, resolution: state.res };
  const series = async (query) => {
    const answer = await getJson(seriesPath, query);
    expand(answer.series);
    return answer;
  };
  const gpus = loadGpuSeries(window_);
  let d;
  if (state.selected) {
    const [node, id] = splitKey(state.selected);
    const [proc, total] = await Promise.all([series({ ...window_, process: id, node }), series(window_)]);
    const p = proc.series[0];
    d = { resolution: proc.resolution, width_s: proc.width_s, cpu: [p], rss: [p], io: [p], threads: [p],
          total: total.series[0] };
  } else {
    // Each chart asks for its own metric only (the threads chart's top processes are those with the most
    // threads); each answer starts with the job total in that metric's columns, and the first three together
    // are the total chart's.
    // The CPU chart per Slurm task (rank) when asked, where the job has ranks.
    const group = (metric) => (metric === "cpu" && byRank() ? { group: "task" } : {});
    const [cpu, rss, io, threads] = await Promise.all(["cpu", "rss", "io", "threads"].map((metric) =>
      series({ ...window_, top: state.top, metric, ...group(metric) })));
    d = { resolution: cpu.resolution, width_s: cpu.width_s, cpu: cpu.series, rss: rss.series, io: io.series,
          threads: threads.series, total: joinTotals(cpu.series[0], rss.series[0], io.series[0]) };
  }
  d.gpu = await gpus;
  state.data = d;
  state.lastRefetch = state.lastGpuRefetch = Date.now();
  draw();
}

// The job's GPUs and the processes that used one (null for a job without GPUs).
async function loadGpuSeries(window_) {
  if (!(state.doc?.gpus || []).length) return null;
  const answer = await getJson(seriesPath, { ...window_, top: state.top, metric: "gpu" });
  return answer.series;
}

// Ranks are offered where a step ran more than one task (an srun -n4, an MPI job).
function hasRanks() {
  const perStep = new Map();
  for (const r of state.treeRows || []) {
    if (r.task == null) continue;
    if (!perStep.has(r.step)) perStep.set(r.step, new Set());
    perStep.get(r.step).add(r.task);
  }
  return [...perStep.values()].some((tasks) => tasks.size > 1);
}
const byRank = () => state.group === "task" && hasRanks();

function splitKey(key) {
  const i = key.lastIndexOf(":");
  return [key.slice(0, i), key.slice(i + 1)];
}

// Live points (second resolution) into the series on show; "other" is the total minus the shown ones.
const COLUMNS = ["samples", "cpu_percent_mean", "cpu_percent_max", "cpu_seconds", "rss_mean_bytes", "rss_max_bytes",
                 "read_bytes", "write_bytes", "threads_mean", "threads_max"];
function mergeInto(target, incoming) {
  for (let i = 0; i < incoming.t.length; i++) {
    const t = incoming.t[i];
    let at = target.t.length;
    while (at > 0 && target.t[at - 1] > t) at--;
    const replace = at > 0 && target.t[at - 1] === t;
    if (replace) at--;
    else target.t.splice(at, 0, t);
    for (const c of COLUMNS) {
      if (!target[c]) continue;
      if (replace) target[c][at] = incoming[c][i];
      else target[c].splice(at, 0, incoming[c][i]);
    }
  }
}

function applySamples(msg) {
  const d = state.data;
  if (!d) return;
  // Only a live window at second resolution, per process, takes points as they come (the stream has no
  // per-rank sums); otherwise refetch now and then.
  if (state.to != null || d.resolution !== "second" || byRank()) {
    if (Date.now() - state.lastRefetch > Math.max(10, d.width_s) * 1000) loadSeries();
    return;
  }
  const byKey = new Map(msg.series.map((s) => [s.key, s]));
  const lists = [d.cpu, d.rss, d.io, d.threads];
  if (byKey.has("total")) mergeInto(d.total, byKey.get("total"));
  for (const list of lists) {
    for (const s of list) {
      if (s === d.total || s.key === "total" || s.key === "other") continue;
      if (byKey.has(s.key)) mergeInto(s, byKey.get(s.key));
    }
    const other = list.find((s) => s.key === "other");
    const total = byKey.get("total");
    if (other && total) {
      const shown = list.filter((s) => s.key !== "other" && s.key !== "total");
      const rest = { t: total.t };
      for (const c of COLUMNS) {
        if (!other[c]) continue;
        rest[c] = total.t.map((t, i) => {
          if (c === "samples") return total[c][i];
          if (c.endsWith("_max") || c === "rss_max_bytes") return null;
          let v = total[c][i];
          for (const s of shown) { const j = s.t.lastIndexOf(t); if (j >= 0 && s[c]) v -= s[c][j] || 0; }
          return Math.max(0, v);
        });
      }
      mergeInto(other, rest);
    }
  }
  // The stream carries no GPU points: those charts are fetched again now and then.
  if (d.gpu && Date.now() - state.lastGpuRefetch > 10000) {
    state.lastGpuRefetch = Date.now();
    loadGpuSeries({ from: state.from, to: state.to, resolution: state.res })
      .then((g) => { if (state.data === d) { d.gpu = g; draw(); } }).catch(() => {});
  }
  draw();
}

// ---------------------------------------------------------------- tree and tables

const tree = new ProcessTree($("tree"), { onSelect: (key) => selectProcess(key) });
const files = new Table($("files"), {
  label: "files", empty: "No files recorded (events may be unavailable for this job).",
  rowClass: (r) => (r.failed ? "failed" : null),
  columns: [{ key: "pid", label: "pid", num: true }, { key: "command", label: "process" }, { key: "path", label: "path" },
            { key: "flags", label: "flags" }, { key: "opens", label: "opens", num: true },
            { key: "failed", label: "failed", num: true },
            { key: "read_bytes", label: "read", num: true, format: (v) => (v ? size(v) : "–") },
            { key: "write_bytes", label: "written", num: true, format: (v) => (v ? size(v) : "–") }],
});
const connections = new Table($("connections"), {
  label: "connections", empty: "No connections recorded (events may be unavailable for this job).",
  rowClass: (r) => (r.failed ? "failed" : null),
  columns: [{ key: "pid", label: "pid", num: true }, { key: "command", label: "process" },
            { key: "address", label: "address" }, { key: "port", label: "port", num: true },
            { key: "protocol", label: "protocol" }, { key: "count", label: "count", num: true },
            { key: "failed", label: "failed", num: true }],
});

function selectProcess(key) {
  state.selected = key;
  tree.select(key);
  const scope = key ? (r) => r.process === key : null;
  files.setScope(scope);
  connections.setScope(scope);
  const row = key && state.treeRows?.find((r) => r.key === key);
  $("selection").hidden = !key;
  $("selection").textContent = row ? `process ${row.pid} ${row.command}` : "";
  $("clear-selection").hidden = !key;
  saveUrl();
  loadSeries().catch(fail);
}

function loadTree() {
  state.treeLoading = fetchTree();
  return state.treeLoading;
}

async function fetchTree() {
  const t = await getJson(`jobs/${encodeURIComponent(container)}/tree`);
  state.treeRows = t.processes;
  tree.setRows(t.processes);
  // The node column, where the job ran on more than one node; the rank column and the CPU chart's grouping,
  // where a step ran more than one task.
  $("processes").classList.toggle("multi-node", new Set(t.processes.map((r) => r.node)).size > 1);
  $("processes").classList.toggle("multi-task", hasRanks());
  $("group-control").hidden = !hasRanks();
  $("tree-count").textContent = `(${t.processes.length})`;
}

async function loadTables() {
  const [f, c] = await Promise.all([getJson(`jobs/${encodeURIComponent(container)}/files`),
                                    getJson(`jobs/${encodeURIComponent(container)}/connections`)]);
  files.setRows(f.files);
  connections.setRows(c.connections);
  $("files-count").textContent = `(${f.files.length})`;
  $("connections-count").textContent = `(${c.connections.length})`;
}

// ---------------------------------------------------------------- live

function startStream() {
  const last = state.data?.total?.t?.at(-1);
  const es = new EventSource(apiUrl(`jobs/${encodeURIComponent(container)}/stream`, { since: last }));
  state.stream = es;
  let treeRefetch = 0;
  setLive("Live: this job is running; new samples arrive as they are recorded.", "running");
  es.addEventListener("job", (e) => { state.doc = { ...state.doc, ...JSON.parse(e.data) }; summary(state.doc); });
  es.addEventListener("samples", (e) => {
    const msg = JSON.parse(e.data);
    expand(msg.series);
    if (tree.update(msg.processes || []) && !treeRefetch)  // a process the tree has not seen: fetch it once
      treeRefetch = setTimeout(() => { treeRefetch = 0; loadTree().catch(() => {}); }, 2000);
    applySamples(msg);
    const newest = msg.series.find((s) => s.key === "total")?.t.at(-1);
    if (newest != null) document.body.dataset.lastSample = String(newest);  // read by the browser tests
  });
  es.addEventListener("end", (e) => {
    es.close();
    state.stream = null;
    state.running = false;
    const end = JSON.parse(e.data).end;
    setLive(`Job ended at ${time(end)}. Live updates stopped.`, "ended");
    document.body.dataset.ended = "true";
    reloadAll().catch(fail);
  });
  es.addEventListener("expired", () => {
    es.close();
    state.stream = null;
    setLive("This link has expired, so live updates stopped; ask for a new link to follow the job.", "ended");
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) setLive("Live updates were interrupted; reload the page to resume.", "ended");
  };
}

// ---------------------------------------------------------------- start

function fail(err) {
  const [title, text, help] = err instanceof ApiError ? explain(err, container) : ["The page failed", String(err), ""];
  showError(title, text, help);
  if (state.stream) state.stream.close();
}

// The efficiency notes, in plain words: shown above the charts when there are any.
async function loadNotes() {
  const { notes } = await getJson(`jobs/${encodeURIComponent(container)}/notes`);
  $("notes").replaceChildren(...notes.map((n) => el("li", { text: n.text, "data-note": n.id })));
  $("notes-section").hidden = notes.length === 0;
}

async function reloadAll() {
  state.doc = await getJson(`jobs/${encodeURIComponent(container)}`);
  await Promise.all([loadTree(), loadTables(), loadSeries(), loadNotes()]);
  summary(state.doc);
}

async function main() {
  if (!container) {
    showError("No job given", "This page shows one job: open it as index.html?container=job_42&token=…",
              "Your job list is at jobs.html.");
    return;
  }
  // The job header first: it is where a missing, expired or wrong token is found out.
  state.doc = await getJson(`jobs/${encodeURIComponent(container)}`);
  state.running = !state.doc.job.end;
  $("main").hidden = false;
  $("resolution").value = ["auto", "s", "m", "h", "d"].includes(state.res) ? state.res : "auto";
  $("top").value = String(state.top);
  $("group").value = state.group;
  summary(state.doc);
  await Promise.all([loadTree(), loadTables(), loadSeries(), loadNotes()]);
  summary(state.doc);
  if (state.selected) selectProcess(state.selected);
  if (state.running) startStream();
  else setLive(`Job ended at ${time(state.doc.job.end)}.`, "ended");
  // The tree draws in an animation frame: ready once the frames asked for so far have run.
  await new Promise((resolve) => requestAnimationFrame(resolve));
  document.body.dataset.ready = "true";
}

$("resolution").addEventListener("change", (e) => { state.res = e.target.value; saveUrl(); loadSeries().catch(fail); });
$("top").addEventListener("change", (e) => { state.top = Number(e.target.value); saveUrl(); loadSeries().catch(fail); });
$("group").addEventListener("change", (e) => { state.group = e.target.value; saveUrl(); loadSeries().catch(fail); });
$("reset-zoom").addEventListener("click", () => { state.from = state.to = null; saveUrl(); loadSeries().catch(fail); });
$("clear-selection").addEventListener("click", () => selectProcess(null));
$("tree-filter").addEventListener("input", (e) => tree.setFilter(e.target.value));
$("expand-all").addEventListener("click", () => tree.expandAll());
$("collapse-all").addEventListener("click", () => tree.collapseAll());

main().catch(fail);
