// The process tree, virtualized: only the rows in view exist in the DOM, so a job of thousands of
// processes scrolls smoothly. Rows come from GET /tree (depth-first, with depth and parent row).
import { el, seconds, size, shortTime } from "./format.js";

const ROW = 28;

export class ProcessTree {
  constructor(container, { onSelect }) {
    this.container = container;
    this.onSelect = onSelect;
    this.rows = [];
    this.collapsed = new Set();  // keys
    this.filterText = "";
    this.selected = null;
    this.focusIndex = 0;
    this.visible = [];
    this.spacer = el("div", { style: "height:0px" });
    container.append(this.spacer);
    container.addEventListener("scroll", () => this.schedule());
    container.addEventListener("keydown", (e) => this.key(e));
    // The focused row is the one the keys act on, however focus got there (click, Tab, a test).
    container.addEventListener("focusin", (e) => {
      const i = e.target.closest?.(".row")?.dataset.index;
      if (i != null) this.focusIndex = Number(i);
    });
    new ResizeObserver(() => this.schedule()).observe(container);
  }

  setRows(rows) {
    this.rows = rows;
    this.byKey = new Map(rows.map((r) => [r.key, r]));
    this.refresh();
  }

  // Live updates of processes already shown (cpu, rss, end, ...).
  update(procs) {
    let unknown = false;
    for (const p of procs) {
      const r = this.byKey?.get(p.key);
      if (r) Object.assign(r, p);
      else unknown = true;
    }
    this.schedule();
    return unknown;
  }

  setFilter(text) { this.filterText = text.trim().toLowerCase(); this.refresh(); }
  expandAll() { this.collapsed.clear(); this.refresh(); }
  collapseAll() { for (const r of this.rows) if (r.children && r.depth === 0) this.collapsed.add(r.key); this.refresh(); }
  select(key) { this.selected = key; this.schedule(); }

  toggle(r) {
    if (this.collapsed.has(r.key)) this.collapsed.delete(r.key);
    else this.collapsed.add(r.key);
    this.refresh();
  }

  matches(r) {
    const t = this.filterText;
    return String(r.pid).includes(t) || r.command.toLowerCase().includes(t) || r.argv.join(" ").toLowerCase().includes(t);
  }

  refresh() {
    const out = [];
    if (this.filterText) {
      for (const r of this.rows) if (this.matches(r)) out.push(r);
    } else {
      let hideDeeperThan = Infinity;
      for (const r of this.rows) {
        if (r.depth > hideDeeperThan) continue;
        hideDeeperThan = Infinity;
        out.push(r);
        if (r.children && this.collapsed.has(r.key)) hideDeeperThan = r.depth;
      }
    }
    this.visible = out;
    this.focusIndex = Math.min(this.focusIndex, Math.max(0, out.length - 1));
    this.spacer.style.height = out.length * ROW + "px";
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  draw() {
    const top = this.container.scrollTop, height = this.container.clientHeight || 420;
    const first = Math.max(0, Math.floor(top / ROW) - 5);
    const last = Math.min(this.visible.length, Math.ceil((top + height) / ROW) + 5);
    const nodes = [this.spacer];
    for (let i = first; i < last; i++) nodes.push(this.rowElement(this.visible[i], i));
    const hadFocus = this.container.contains(document.activeElement) && document.activeElement !== this.container;
    this.container.replaceChildren(...nodes);
    if (hadFocus) this.container.querySelector(`[data-index="${this.focusIndex}"]`)?.focus();
  }

  rowElement(r, i) {
    const open = r.children ? !this.collapsed.has(r.key) : null;
    const args = r.argv.length ? r.argv.join(" ") : `[${r.command}]`;
    const toggle = r.children
      ? el("button", { type: "button", class: "toggle", tabindex: "-1", "aria-label": open ? "collapse" : "expand",
                       text: open ? "▾" : "▸", onclick: (e) => { e.stopPropagation(); this.toggle(r); } })
      : el("span", { class: "leaf" });
    const row = el("div", {
      class: "row" + (r.key === this.selected ? " selected" : ""), role: "treeitem", "aria-level": r.depth + 1,
      "aria-expanded": open == null ? null : String(open), "aria-selected": String(r.key === this.selected),
      tabindex: i === this.focusIndex ? "0" : "-1", "data-index": i, "data-key": r.key, "data-pid": r.pid,
      style: `top:${i * ROW}px`, title: `${args}\nnode ${r.node}, step ${r.step}` +
        (r.task != null ? `, rank ${r.task}` : "") + (r.max_threads > 1 ? `, ${r.max_threads} threads` : "") +
        (r.exit_code != null ? `, exit ${r.exit_signal ? "signal " + r.exit_signal : r.exit_code}` : ""),
      onclick: () => { this.focusIndex = i; this.onSelect(r.key === this.selected ? null : r.key); },
    },
    el("span", { class: "name", style: `padding-left:${Math.min(r.depth, 30) * 0.9}rem` }, toggle,
       el("strong", { text: String(r.pid) }), el("span", { class: "cmd", text: args })),
    el("span", { text: shortTime(r.start) }),
    el("span", { class: r.end ? "" : "gone", text: r.end ? shortTime(r.end) : "running" }),
    el("span", { class: "num", text: seconds(r.cpu_seconds) }),
    el("span", { class: "num", text: size(r.max_rss_bytes) }),
    el("span", { class: "num", text: size(r.read_bytes) }),
    el("span", { class: "num", text: size(r.write_bytes) }),
    el("span", { class: "rank num", text: r.task != null ? String(r.task) : "" }),
    el("span", { class: "node", text: r.node }));
    return row;
  }

  key(e) {
    const r = this.visible[this.focusIndex];
    if (!r) return;
    let handled = true;
    if (e.key === "ArrowDown") this.focusIndex = Math.min(this.visible.length - 1, this.focusIndex + 1);
    else if (e.key === "ArrowUp") this.focusIndex = Math.max(0, this.focusIndex - 1);
    else if (e.key === "Home") this.focusIndex = 0;
    else if (e.key === "End") this.focusIndex = this.visible.length - 1;
    else if (e.key === "ArrowRight" && r.children && this.collapsed.has(r.key)) this.toggle(r);
    else if (e.key === "ArrowLeft" && r.children && !this.collapsed.has(r.key)) this.toggle(r);
    else if (e.key === "Enter" || e.key === " ") this.onSelect(r.key === this.selected ? null : r.key);
    else handled = false;
    if (!handled) return;
    e.preventDefault();
    // Keep the focused row in view, then draw it and move focus there.
    const y = this.focusIndex * ROW, c = this.container;
    if (y < c.scrollTop) c.scrollTop = y;
    else if (y + ROW > c.scrollTop + c.clientHeight) c.scrollTop = y + ROW - c.clientHeight;
    this.draw();
    c.querySelector(`[data-index="${this.focusIndex}"]`)?.focus();
  }
}
