// A sortable, filterable table shown a page at a time, so tens of thousands of rows never freeze the tab.
import { el } from "./format.js";

const PAGE = 100;

export class Table {
  // columns: [{key, label, num?, format?(value,row)}]; rowClass?(row) -> class name
  constructor(container, { columns, label, rowClass, empty }) {
    this.columns = columns;
    this.rowClass = rowClass;
    this.empty = empty;
    this.rows = [];
    this.filterText = "";
    this.scope = null;  // a predicate set by the page (the selected process)
    this.sortKey = null;
    this.sortDir = 1;
    this.page = 0;
    this.filter = el("input", { type: "search", placeholder: "filter", "aria-label": `filter ${label}` });
    this.filter.addEventListener("input", () => { this.filterText = this.filter.value.toLowerCase(); this.page = 0; this.render(); });
    this.info = el("span", { class: "muted", "aria-live": "polite" });
    this.prev = el("button", { type: "button", text: "‹ previous", onclick: () => { this.page--; this.render(); } });
    this.next = el("button", { type: "button", text: "next ›", onclick: () => { this.page++; this.render(); } });
    this.head = el("tr");
    for (const c of columns) {
      const th = el("th", { class: c.num ? "num" : null, scope: "col", "aria-sort": "none" },
        el("button", { type: "button", text: c.label, onclick: () => this.sortBy(c.key) }));
      c.th = th;
      this.head.append(th);
    }
    this.body = el("tbody");
    this.table = el("table", { "aria-label": label }, el("thead", {}, this.head), this.body);
    container.replaceChildren(el("div", { class: "table-tools" }, this.filter, this.prev, this.next, this.info),
                              el("div", { class: "table-wrap" }, this.table));
  }

  setRows(rows) { this.rows = rows; this.render(); }
  setScope(predicate) { this.scope = predicate; this.page = 0; this.render(); }

  sortBy(key) {
    this.sortDir = this.sortKey === key ? -this.sortDir : (this.columns.find((c) => c.key === key).num ? -1 : 1);
    this.sortKey = key;
    for (const c of this.columns)
      c.th.setAttribute("aria-sort", c.key !== key ? "none" : this.sortDir > 0 ? "ascending" : "descending");
    this.render();
  }

  visible() {
    let rows = this.scope ? this.rows.filter(this.scope) : this.rows;
    if (this.filterText)
      rows = rows.filter((r) => this.columns.some((c) => String(r[c.key] ?? "").toLowerCase().includes(this.filterText)));
    if (this.sortKey) {
      const k = this.sortKey, d = this.sortDir;
      rows = [...rows].sort((a, b) => (a[k] < b[k] ? -d : a[k] > b[k] ? d : 0));
    }
    return rows;
  }

  render() {
    const rows = this.visible();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    this.page = Math.min(Math.max(0, this.page), pages - 1);
    const shown = rows.slice(this.page * PAGE, (this.page + 1) * PAGE);
    this.body.replaceChildren(...shown.map((r) => el("tr", { class: this.rowClass ? this.rowClass(r) : null },
      ...this.columns.map((c) => el("td", { class: c.num ? "num" : c.key === "path" ? "path" : null,
                                            text: c.format ? c.format(r[c.key], r) : String(r[c.key] ?? "") })))));
    if (!rows.length) this.body.append(el("tr", {}, el("td", { colspan: this.columns.length, class: "muted",
                                                                text: this.rows.length ? "Nothing matches." : this.empty })));
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
    this.info.textContent = rows.length > PAGE
      ? `${this.page * PAGE + 1}–${this.page * PAGE + shown.length} of ${rows.length}` : `${rows.length} rows`;
  }
}
