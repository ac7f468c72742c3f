// Views per hour as an inline SVG bar chart: no library, scales to its box.

import { count, dayLabel, hourLabel, short } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 40, right: 8, top: 10, bottom: 24 };

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The top of the axis: four gridlines at round, whole steps (1, 2 or 5 times a power of 10).
function niceMax(value) {
  const raw = Math.max(value / 4, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return 4 * step;
}

// points: [{hour: Date, views: number}] in order, one per hour of the window.
export function drawChart(svg, points) {
  // Drawn at the box's own size, so text keeps its size from laptop to phone.
  const W = svg.clientWidth || 720;
  const H = svg.clientHeight || 200;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const max = niceMax(Math.max(0, ...points.map((p) => p.views)));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(points.length, 1);
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    svg.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }));
    svg.append(el("text", { x: PAD.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, short((max * i) / 4)));
  }
  points.forEach((p, i) => {
    const h = (plotH * p.views) / max;
    const x = PAD.left + i * slot + slot * 0.15;
    const bar = el("rect", {
      x, y: PAD.top + plotH - h, width: slot * 0.7, height: Math.max(h, 0), rx: 2,
      class: i === points.length - 1 ? "bar now" : "bar",
    });
    bar.append(el("title", {}, `${dayLabel(p.hour)} ${hourLabel(p.hour)} UTC: ${count(p.views)} views`));
    svg.append(bar);
    const hour = p.hour.getUTCHours();
    const every = W < 500 ? 12 : 6; // fewer labels where they would collide
    if (hour % every === 0) {
      const label = hour === 0 ? dayLabel(p.hour) : hourLabel(p.hour);
      svg.append(el("text", { x: x + slot * 0.35, y: H - 6, class: "axis", "text-anchor": "middle" }, label));
    }
  });
}
