// Opens one page of the web view in real headless Chromium (playwright-core, /usr/bin/chromium) and prints
// what a user would see as JSON, for the Python tests to check:
//   node page_probe.mjs URL [--width PX] [--screenshot FILE] [--live SECONDS] [--scroll-tree]
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(process.env.BC_WEB_NODE_MODULES + "/");
const { chromium } = require("playwright-core");

const args = process.argv.slice(2);
const url = args[0];
const opt = (name, def) => { const i = args.indexOf(name); return i < 0 ? def : args[i + 1]; };
const width = Number(opt("--width", "1280"));
const live = Number(opt("--live", "0"));
const profile = mkdtempSync(join(tmpdir(), "bc-chromium-"));
// A fresh profile every run (playwright passes it to Chromium as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.BC_CHROMIUM || "/usr/bin/chromium", headless: true, viewport: { width, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"],
});
const out = { console_errors: [], requests: 0 };
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") out.console_errors.push(m.text()); });
  page.on("pageerror", (e) => out.console_errors.push(String(e)));
  page.on("request", () => { out.requests++; });
  await page.addInitScript(() => {
    window.__longest = 0;
    try {
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
        .observe({ type: "longtask", buffered: true });
    } catch { /* longtask not supported */ }
  });
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === "true" || !document.getElementById("error").hidden,
                             null, { timeout: 30000 });
  out.load_ms = Date.now() - t0;
  const snap = () => page.evaluate(() => {
    const d = document.body.dataset;
    const shown = (e) => (e ? !e.hidden && getComputedStyle(e).display !== "none" : null);
    const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.trim());
    const fields = {};
    for (const dd of document.querySelectorAll("[data-field]")) fields[dd.dataset.field] = { value: dd.dataset.value, text: dd.textContent };
    const table = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => [...tr.children].map((td) => td.textContent));
    return {
      ready: d.ready === "true", error: document.getElementById("error").hidden ? null : {
        title: document.getElementById("error-title").textContent, text: document.getElementById("error-text").textContent },
      body_text_length: document.body.innerText.trim().length,
      fields, live: document.getElementById("live")?.textContent || "", ended: d.ended === "true",
      last_sample: d.lastSample || null,
      points: { cpu: d.points_cpu, rss: d.points_rss, io: d.points_io, threads: d.points_threads, total: d.points_total,
                gpu_util: d.points_gpu_util, gpu_memory: d.points_gpu_memory,
                gpu_process_memory: d.points_gpu_process_memory, gpu_sm: d.points_gpu_sm },
      gpu_charts_shown: [...document.querySelectorAll("figure.gpu")].filter((f) => !f.hidden).length,
      labels_gpu_util: d.labels_gpu_util || "", labels_gpu_process_memory: d.labels_gpu_process_memory || "",
      canvases: document.querySelectorAll(".chart canvas").length,
      tree_dom_rows: document.querySelectorAll("#tree .row").length,
      tree_rows: [...document.querySelectorAll("#tree .row")].map((r) => ({
        pid: Number(r.dataset.pid), key: r.dataset.key, level: Number(r.getAttribute("aria-level")),
        text: r.querySelector(".cmd")?.textContent,
        node: getComputedStyle(r.querySelector(".node")).display === "none" ? null : r.querySelector(".node").textContent,
        rank: getComputedStyle(r.querySelector(".rank")).display === "none" ? null : r.querySelector(".rank").textContent })),
      // The job page's parts (null on jobs.html, which has none of them).
      rank_header: shown(document.querySelector(".tree-head .rank")),
      group_control: shown(document.getElementById("group-control")),
      cpu_caption: document.getElementById("cpu-caption")?.textContent ?? null,
      labels_cpu: d.labels_cpu || "",
      labels_threads: d.labels_threads || "",
      notes: !shown(document.getElementById("notes-section")) ? [] :
        [...document.querySelectorAll("#notes li")].map((li) => ({ id: li.dataset.note, text: li.textContent })),
      tree_count: document.getElementById("tree-count")?.textContent,
      files: table("files"), connections: table("connections"), jobs: table("jobs"),
      links: [...document.querySelectorAll("#jobs a")].map((a) => a.getAttribute("href")),
      title: document.title,
    };
  });
  Object.assign(out, await snap());
  if (opt("--screenshot")) await page.screenshot({ path: opt("--screenshot"), fullPage: true });
  for (const table of ["files", "connections"]) {
    if (!opt(`--${table}-filter`) || !out.ready) continue;
    // Typed into the table's filter box, as a user looking for one entry would.
    await page.fill(`#${table} input[type=search]`, opt(`--${table}-filter`));
    out[`${table}_filtered`] = await page.evaluate((id) =>
      [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => [...tr.children].map((td) => td.textContent)), table);
  }
  if (args.includes("--scroll-tree") && out.ready) {
    // Scroll the tree to its end and check the last process is drawn; then keyboard-select a row.
    const t1 = Date.now();
    await page.evaluate(() => { const t = document.getElementById("tree"); t.scrollTop = t.scrollHeight; });
    await page.waitForTimeout(300);
    out.scrolled_rows = await page.evaluate(() => [...document.querySelectorAll("#tree .row")].map((r) => Number(r.dataset.pid)));
    out.scroll_ms = Date.now() - t1;
    await page.focus("#tree .row");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => !document.getElementById("selection").hidden, null, { timeout: 10000 });
    out.selected = await page.evaluate(() => ({ chip: document.getElementById("selection").textContent,
                                               url: location.search, points: document.body.dataset.points_cpu }));
  }
  if (live > 0 && out.ready) {
    // A new point within 3 s of the first one seen, then the end of the job.
    const first = await page.waitForFunction(() => document.body.dataset.lastSample, null, { timeout: 10000 })
      .then((h) => h.jsonValue());
    const t1 = Date.now();
    await page.waitForFunction((f) => document.body.dataset.lastSample && document.body.dataset.lastSample !== f, first,
                               { timeout: 10000 });
    out.new_point_ms = Date.now() - t1;
    out.points_before_end = await page.evaluate(() => document.body.dataset.points_total);
    const requestsBefore = out.requests;
    await page.waitForFunction(() => document.body.dataset.ended === "true", null, { timeout: live * 1000 });
    await page.waitForTimeout(1500);
    out.requests_while_live = out.requests - requestsBefore;
    Object.assign(out, await snap());
    if (opt("--screenshot")) await page.screenshot({ path: opt("--screenshot").replace(/\.png$/, "-ended.png"), fullPage: true });
  }
  out.longest_task_ms = await page.evaluate(() => window.__longest);
} catch (e) {
  out.probe_error = String(e);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
