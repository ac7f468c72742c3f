// The dashboard: live tables over SSE, rendered into cards, a chart and top-N tables.

import { drawChart } from "./chart.js";
import { count, dayLabel, duration, percent } from "./format.js";
import { LiveTable } from "./live.js";
import { finishSignIn, refreshSignIn, signIn, ssoConfig } from "./sso.js";

const HOURS = 48;
const TOP = 10;
const HOUR_MS = 3600 * 1000;
const TOKEN_KEY = "flightdeck-token";
const REFRESH_KEY = "flightdeck-sso-refresh"; // the provider's refresh token, if it gave one
// Before the page reads its own query: a return from the identity provider puts it back.
const sso = await ssoConfig();
const ssoFailure = await finishSignIn(sso).then(
  (earned) => (earned && keepTokens(earned), null),
  (error) => error.message,
);
let refreshing = null; // one refresh at a time: every stream meets the expiry at once
const params = new URLSearchParams(location.search);
// ?now=2024-01-15T12:00:00Z pins the clock: history, and a deterministic page for tests.
const pinned = params.get("now") ? new Date(params.get("now")) : null;

const $ = (id) => document.getElementById(id);
const state = { streams: {}, pageStream: null, page: params.get("page") || "", today: "" };

function now() {
  return pinned ?? new Date();
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function hourStart(date) {
  return new Date(Math.floor(date.getTime() / HOUR_MS) * HOUR_MS);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function keepTokens({ access, refresh }) {
  sessionStorage.setItem(TOKEN_KEY, access);
  if (refresh) sessionStorage.setItem(REFRESH_KEY, refresh);
  else sessionStorage.removeItem(REFRESH_KEY);
}

function sum(rows, column) {
  return rows.reduce((total, row) => total + (row[column] ?? 0), 0);
}

// A rate or mean over several rows (hosts), weighted by the visits each stands for.
function weighted(rows, column, weight) {
  const total = sum(rows, weight);
  return total ? rows.reduce((t, r) => t + (r[column] ?? 0) * (r[weight] ?? 0), 0) / total : null;
}

// `top` keeps only the server's live top-N rows here, exact as they enter and leave.
function subscribe(view, keys, where, columns, top) {
  const params = { where, columns: columns.join(","), min_interval_ms: 250 };
  if (top) params.top = top;
  return new LiveTable(view, keys, params, {
    token,
    onChange: schedule,
    onStatus: showStatus,
    onAuth: onAuthFailure,
  });
}

function startStreams() {
  stopStreams();
  const at = now();
  state.today = isoDay(at);
  const since = new Date(hourStart(at).getTime() - (HOURS - 1) * HOUR_MS).toISOString();
  const today = { date: state.today };
  state.since = since;
  state.streams = {
    hourly: subscribe("va_site_hourly", ["hour", "host"], { hour: { ">=": since } }, ["views", "visits", "visitors"]),
    daily: subscribe("va_site_daily", ["date", "host"], today,
      ["views", "visits", "visitors", "bounce_rate", "avg_visit_duration"]),
    pages: subscribe("va_pages_daily", ["date", "host", "path"], today,
      ["views", "visits", "visitors", "time_on_page"], { order_by: "views", desc: true, limit: TOP }),
    sources: subscribe("va_sources_daily", ["date", "source", "medium", "campaign"], today,
      ["views", "visits", "visitors", "bounce_rate"], { order_by: "visits", desc: true, limit: TOP }),
  };
  startPageStream();
  schedule();
}

function stopStreams() {
  for (const stream of Object.values(state.streams)) stream.close();
  state.streams = {};
  stopPageStream();
}

function stopPageStream() {
  state.pageStream?.close();
  state.pageStream = null;
}

// va_pageview_hourly is keyed by the URL as sent: a bare path, or the path on each host seen.
function pageUrls(path) {
  const hosts = new Set(pageRows(path).map((r) => r.host).filter(Boolean));
  return [path, ...[...hosts].flatMap((h) => [`https://${h}${path}`, `http://${h}${path}`])];
}

function startPageStream() {
  stopPageStream();
  if (!state.page || !state.since) return;
  state.pageUrls = pageUrls(state.page).join("\n");
  state.pageStream = subscribe("va_pageview_hourly", ["page_url", "hour"],
    { page_url: { in: pageUrls(state.page) }, hour: { ">=": state.since } }, ["view_count", "unique_visitors"]);
}

function pageRows(path) {
  return state.streams.pages ? state.streams.pages.values().filter((r) => r.path === path) : [];
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function render() {
  const { hourly, daily, pages, sources } = state.streams;
  if (!hourly) return;
  // A page first seen on a new host after filtering: follow its URL there too.
  if (state.page && pageUrls(state.page).join("\n") !== state.pageUrls) startPageStream();
  const at = now();
  $("day").textContent = dayLabel(at);
  $("scope").firstChild.textContent = state.page ? `Page ${state.page} · ` : "All pages · ";
  renderMetrics(at);
  renderChart(at);
  renderPages(pages.values());
  renderSources(sources.values());
  const streams = Object.values(state.streams);
  document.body.dataset.ready = String(streams.every((s) => s.cursor !== null));
  // A top-N stream takes its N rows afresh on every resume (docs/live.md); the others
  // resume from their cursors, so their snapshots count only fresh starts.
  const resumable = streams.filter((s) => !s.params.top);
  document.body.dataset.snapshots = String(resumable.reduce((n, s) => n + s.snapshots, 0));
}

function metric(id, label, value, text, note = "") {
  return `<div class="metric" data-metric="${id}" data-value="${value ?? ""}">
    <div class="label">${label}</div><div class="value">${text}</div><div class="note">${note}</div></div>`;
}

function renderMetrics(at) {
  const current = hourStart(at).getTime();
  const thisHour = state.streams.hourly.values().filter((r) => Date.parse(r.hour) === current);
  let html;
  if (state.page) {
    const rows = pageRows(state.page);
    const pageHour = state.pageStream ? state.pageStream.values().filter((r) => Date.parse(r.hour) === current) : [];
    html = [
      metric("page-views-now", "Views this hour", sum(pageHour, "view_count"), count(sum(pageHour, "view_count"))),
      metric("page-visitors-today", "Visitors today", sum(rows, "visitors"), count(sum(rows, "visitors"))),
      metric("page-views-today", "Views today", sum(rows, "views"), count(sum(rows, "views"))),
      metric("page-visits-today", "Visits today", sum(rows, "visits"), count(sum(rows, "visits"))),
      metric("page-time", "Time on page", weighted(rows, "time_on_page", "views"),
        duration(weighted(rows, "time_on_page", "views"))),
    ];
  } else {
    const day = state.streams.daily.values();
    const visits = sum(thisHour, "visits");
    html = [
      metric("visitors-now", "Visitors now", sum(thisHour, "visitors"), count(sum(thisHour, "visitors")),
        `${count(visits)} ${visits === 1 ? "visit" : "visits"} this hour`),
      metric("visitors-today", "Visitors today", sum(day, "visitors"), count(sum(day, "visitors"))),
      metric("views-today", "Views today", sum(day, "views"), count(sum(day, "views"))),
      metric("visits-today", "Visits today", sum(day, "visits"), count(sum(day, "visits"))),
      metric("bounce-today", "Bounce rate", weighted(day, "bounce_rate", "visits"),
        percent(weighted(day, "bounce_rate", "visits")),
        `avg visit ${duration(weighted(day, "avg_visit_duration", "visits"))}`),
    ];
  }
  $("metrics").innerHTML = html.join("");
}

function renderChart(at) {
  const source = state.page ? state.pageStream : state.streams.hourly;
  const column = state.page ? "view_count" : "views";
  const perHour = new Map();
  for (const row of source ? source.values() : []) {
    const t = Date.parse(row.hour);
    perHour.set(t, (perHour.get(t) ?? 0) + (row[column] ?? 0));
  }
  const last = hourStart(at).getTime();
  const points = [];
  for (let i = HOURS - 1; i >= 0; i--) {
    const t = last - i * HOUR_MS;
    points.push({ hour: new Date(t), views: perHour.get(t) ?? 0 });
  }
  $("chart-title").textContent = state.page ? `Views per hour of ${state.page}` : "Views per hour";
  drawChart($("chart"), points);
  $("chart-empty").hidden = points.some((p) => p.views > 0);
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Top N by a column, summed over the other key columns (hosts; medium and campaign).
function topBy(rows, group, order) {
  const totals = new Map();
  for (const row of rows) {
    const name = group(row);
    const t = totals.get(name) ?? { name, rows: [] };
    t.rows.push(row);
    totals.set(name, t);
  }
  return [...totals.values()]
    .map((t) => ({ ...t, [order]: sum(t.rows, order) }))
    .sort((a, b) => b[order] - a[order] || (a.name < b.name ? -1 : 1))
    .slice(0, TOP);
}

function bar(share) {
  return `style="--share:${(100 * share).toFixed(1)}%"`;
}

function renderPages(rows) {
  const top = topBy(rows, (r) => r.path ?? "(none)", "views");
  const max = top[0]?.views || 1;
  $("pages").tBodies[0].innerHTML = top.map((t) => {
    const visitors = sum(t.rows, "visitors");
    const selected = t.name === state.page ? " selected" : "";
    return `<tr class="row${selected}" data-path="${escape(t.name)}" data-views="${t.views}" data-visitors="${visitors}" ${bar(t.views / max)}>
      <td><button class="page-link" type="button">${escape(t.name)}</button></td>
      <td class="num">${count(visitors)}</td><td class="num">${count(t.views)}</td></tr>`;
  }).join("");
  $("pages-empty").hidden = top.length > 0;
}

function renderSources(rows) {
  const top = topBy(rows, (r) => r.source ?? "(internal)", "visits");
  const max = top[0]?.visits || 1;
  $("sources").tBodies[0].innerHTML = top.map((t) => {
    const bounce = weighted(t.rows, "bounce_rate", "visits");
    return `<tr class="row" data-source="${escape(t.name)}" data-visits="${t.visits}" ${bar(t.visits / max)}>
      <td>${escape(t.name)}</td><td class="num">${count(t.visits)}</td><td class="num">${percent(bounce)}</td></tr>`;
  }).join("");
  $("sources-empty").hidden = top.length > 0;
}

const LABELS = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", login: "Sign in needed" };

function showStatus() {
  const states = Object.values(state.streams).concat(state.pageStream ? [state.pageStream] : []).map((s) => s.status);
  const worst = ["login", "reconnecting", "connecting"].find((s) => states.includes(s)) ?? "live";
  $("status").dataset.state = worst;
  $("status").querySelector(".text").textContent = LABELS[worst];
}

function setPage(path) {
  state.page = path.trim();
  $("page").value = state.page;
  $("clear").hidden = !state.page;
  const url = new URL(location.href);
  if (state.page) url.searchParams.set("page", state.page);
  else url.searchParams.delete("page");
  history.replaceState(null, "", url);
  startPageStream();
  schedule();
}

function askLogin() {
  const dialog = $("login");
  if (!dialog.open) dialog.showModal();
}

function showLoginError(text) {
  $("login-error").textContent = text;
  $("login-error").hidden = false;
  askLogin();
}

async function login(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = $("login-error");
  error.hidden = true;
  let earned = form.get("token")?.trim();
  if (!earned) {
    // Basic once: the answer carries a session token, sent as Bearer from then on.
    const basic = btoa(unescape(encodeURIComponent(`${form.get("user")}:${form.get("password")}`)));
    const response = await fetch("/api/views", { headers: { Authorization: `Basic ${basic}` } });
    earned = response.ok ? (response.headers.get("Authorization") || "").replace(/^Bearer\s+/i, "") : "";
    if (!earned) {
      error.textContent = response.status === 401 ? "Wrong user or password." : `The server said ${response.status}.`;
      error.hidden = false;
      return;
    }
  }
  sessionStorage.setItem(TOKEN_KEY, earned);
  sessionStorage.removeItem(REFRESH_KEY); // a password's token: nothing to renew it with
  $("login").close();
  startStreams();
}

// A stale token: renewed at the provider when it gave a refresh token, else ask again.
function onAuthFailure() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  if (!sso || !refresh) {
    askLogin();
    return;
  }
  refreshing ??= refreshSignIn(sso, refresh)
    .then((earned) => (keepTokens(earned), startStreams()))
    .catch(() => (sessionStorage.removeItem(REFRESH_KEY), askLogin()))
    .finally(() => (refreshing = null));
}

function init() {
  $("filter").addEventListener("submit", (e) => {
    e.preventDefault();
    setPage($("page").value);
  });
  $("page").addEventListener("search", () => setPage($("page").value));
  $("clear").addEventListener("click", () => setPage(""));
  $("pages").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-path]");
    if (row) setPage(row.dataset.path === state.page ? "" : row.dataset.path);
  });
  $("login-form").addEventListener("submit", login);
  if (sso) {
    $("sso").hidden = false;
    $("sso").addEventListener("click", () => signIn(sso).catch((e) => showLoginError(e.message)));
  }
  if (ssoFailure) showLoginError(ssoFailure);
  setPage(state.page);
  startStreams();
  addEventListener("resize", schedule);
  // A new UTC day starts new "today" subscriptions; the hourly window slides by itself.
  setInterval(() => (isoDay(now()) !== state.today ? startStreams() : schedule()), 30_000);
}

init();
