// Number and time formatting shared by the pages. Sizes are 1024-based like sacct and bcacct.
const UNITS = ["", "K", "M", "G", "T", "P", "E"];

export function size(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return "–";
  let v = Number(bytes), i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)) + UNITS[i] + (i ? "" : "B");
}

export function rate(bytesPerSecond) { return size(bytesPerSecond) + "/s"; }

export function seconds(s) {
  if (s == null) return "–";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  return duration(s);
}

// Like sacct's Elapsed: HH:MM:SS, or D-HH:MM:SS from one day.
export function duration(total) {
  total = Math.max(0, Math.round(total));
  const d = Math.floor(total / 86400), h = Math.floor(total / 3600) % 24, m = Math.floor(total / 60) % 60, s = total % 60;
  const hms = [h, m, s].map((n) => String(n).padStart(2, "0")).join(":");
  return d ? `${d}-${hms}` : hms;
}

export function time(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                                        minute: "2-digit", second: "2-digit" });
}

export function shortTime(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function percent(p) { return p == null ? "–" : p.toFixed(p < 10 ? 1 : 0) + " %"; }

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
