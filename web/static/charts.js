// uPlot charts (vendor/uPlot.iife.min.js defines the global uPlot). Each chart follows its container's
// width; dragging across one selects a window, which the page turns into a zoom kept in the address.
import { size, rate, percent } from "./format.js";

const PALETTE = ["#2f6fdf", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d",
                 "#a61e4d", "#1864ab", "#862e9c", "#495057"];
export const OTHER_COLOR = "#9aa4ae";

const AXIS_FORMAT = { pct: (v) => v.toFixed(0) + "%", bytes: (v) => size(v), rate: (v) => rate(v),
                      count: (v) => (Number.isInteger(v) ? String(v) : ""), watts: (v) => v.toFixed(0) + " W" };
const VALUE_FORMAT = { pct: (v) => percent(v), bytes: (v) => size(v), rate: (v) => rate(v),
                       count: (v) => String(Math.round(v * 100) / 100), watts: (v) => v.toFixed(1) + " W" };

function axisColor() { return getComputedStyle(document.body).color; }

export class Chart {
  // kinds: the unit of the left axis ("pct", "bytes", "rate", "count", "watts"); rightKind: optional second axis.
  constructor(container, { kind, rightKind = null, onZoom }) {
    this.container = container;
    this.kind = kind;
    this.rightKind = rightKind;
    this.onZoom = onZoom;
    this.plot = null;
    this.signature = "";
    new ResizeObserver(() => this.resize()).observe(container);
  }

  width() { return Math.max(240, this.container.clientWidth - 4); }

  resize() { if (this.plot) this.plot.setSize({ width: this.width(), height: 230 }); }

  // series: [{label, color?, scale?: "left"|"right", values: [...]}] over xs (epoch seconds).
  set(xs, series) {
    if (typeof uPlot === "undefined") {
      this.container.replaceChildren(Object.assign(document.createElement("p"),
        { className: "empty", textContent: "Charts unavailable: uPlot was not installed with the web view." }));
      return;
    }
    if (!xs.length) {
      this.destroy();
      this.container.replaceChildren(Object.assign(document.createElement("p"),
        { className: "empty", textContent: "No samples in this window." }));
      return;
    }
    const signature = series.map((s) => s.label + "|" + (s.scale || "left")).join(",");
    const data = [xs, ...series.map((s) => s.values)];
    if (this.plot && signature === this.signature) {
      this.plot.setData(data);
      return;
    }
    this.destroy();
    this.signature = signature;
    const fg = axisColor();
    const grid = { stroke: "rgba(128,128,128,0.18)" };
    const axes = [{ stroke: fg, grid }, { stroke: fg, grid, scale: this.kind, size: 70,
                                         values: (u, vals) => vals.map(AXIS_FORMAT[this.kind]) }];
    const scales = { x: { time: true }, [this.kind]: { range: (u, min, max) => [0, Math.max(max, this.kind === "pct" || this.kind === "count" ? 1 : 1024)] } };
    if (this.rightKind) {
      axes.push({ stroke: fg, side: 1, grid: { show: false }, scale: this.rightKind, size: 70,
                  values: (u, vals) => vals.map(AXIS_FORMAT[this.rightKind]) });
      scales[this.rightKind] = { range: (u, min, max) => [0, Math.max(max, this.rightKind === "watts" ? 1 : 1024)] };
    }
    const opts = {
      width: this.width(), height: 230, scales, axes,
      series: [{}, ...series.map((s, i) => {
        const unit = s.scale === "right" ? this.rightKind : this.kind;
        return { label: s.label, scale: unit, stroke: s.color || PALETTE[i % PALETTE.length], width: 1.5,
                 spanGaps: false, value: (u, v) => (v == null ? "–" : VALUE_FORMAT[unit](v)) };
      })],
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = Math.floor(u.posToVal(u.select.left, "x"));
          const to = Math.ceil(u.posToVal(u.select.left + u.select.width, "x"));
          u.setSelect({ left: 0, width: 0 }, false);
          if (to > from) this.onZoom(from, to);
        }],
      },
    };
    this.container.replaceChildren();
    this.plot = new uPlot(opts, data, this.container);
  }

  points() { return this.plot ? this.plot.data[0].length : 0; }

  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.signature = "";
  }
}

export function colorFor(i) { return PALETTE[i % PALETTE.length]; }
