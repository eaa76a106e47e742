// WikiPulse dashboard. Everything from the stream is untrusted: it is only ever
// written with textContent (never innerHTML), so a wiki name stays text.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let selected = null;
let newestEnd = null;

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19) + "Z";
}

function drawBars(svg, values) {
  svg.replaceChildren();
  const width = 600, height = Number(svg.viewBox.baseVal.height);
  const max = Math.max(1, ...values);
  const step = width / Math.max(values.length, 1);
  values.forEach((value, i) => {
    const rect = document.createElementNS(SVG, "rect");
    const h = (value / max) * (height - 10);
    rect.setAttribute("x", String(i * step + 1));
    rect.setAttribute("y", String(height - h));
    rect.setAttribute("width", String(Math.max(step - 2, 1)));
    rect.setAttribute("height", String(h));
    const title = document.createElementNS(SVG, "title");
    title.textContent = String(value);
    rect.appendChild(title);
    svg.appendChild(rect);
  });
}

function drawLeaderboard(detail) {
  const body = $("leaderboard").querySelector("tbody");
  const rows = detail.leaderboard.map((entry, i) => {
    const tr = document.createElement("tr");
    tr.dataset.server = entry.server_name;
    if (entry.server_name === selected) tr.classList.add("selected");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * entry.count) / detail.leaderboard[0].count}%`;
    const cells = [String(i + 1), entry.server_name, String(entry.count)];
    cells.forEach((text, c) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (c === 2) td.className = "num";
      tr.appendChild(td);
    });
    const barCell = document.createElement("td");
    barCell.appendChild(bar);
    tr.appendChild(barCell);
    tr.addEventListener("click", () => selectWiki(entry.server_name));
    return tr;
  });
  body.replaceChildren(...rows);
  $("leaderboard").dataset.window = String(detail.start);
  $("board-window").textContent = `${clock(detail.start)}–${clock(detail.end)} · ${detail.total} changes on ${detail.wikis} wikis`;
  $("board-empty").hidden = rows.length > 0;
}

function drawUnusual(report) {
  const body = $("unusual").querySelector("tbody");
  const found = report === null ? [] : report.unusual;
  const rows = found.map((wiki) => {
    const tr = document.createElement("tr");
    tr.dataset.server = wiki.server_name;
    if (wiki.server_name === selected) tr.classList.add("selected");
    const ratio = wiki.baseline_median > 0 ? `${(wiki.count / wiki.baseline_median).toFixed(1)}×` : "new";
    [wiki.server_name, String(wiki.count), String(wiki.baseline_median), ratio].forEach((text, c) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (c > 0) td.className = "num";
      tr.appendChild(td);
    });
    tr.title = `${wiki.score} robust deviations above its median`;
    tr.addEventListener("click", () => selectWiki(wiki.server_name));
    return tr;
  });
  body.replaceChildren(...rows);
  $("unusual").dataset.window = report === null ? "" : String(report.start);
  $("unusual-window").textContent = report === null ? "" : `${clock(report.start)}–${clock(report.end)}`;
  $("unusual-empty").hidden = rows.length > 0;
  $("unusual-empty").textContent = report !== null && report.baseline_windows < report.min_baseline_windows
    ? "Not enough history yet to tell what is unusual."
    : "Nothing unusual in the newest window.";
  $("unusual-rule").textContent = report === null ? "" :
    `Each wiki against its median over the last ${report.baseline_minutes} min (${report.baseline_windows} windows): ` +
    `flagged above ${report.threshold} robust deviations and at least ${report.min_count} changes.`;
}

function drawTotals(windows) {
  const oldestFirst = [...windows].reverse();
  drawBars($("totals"), oldestFirst.map((w) => w.total));
  $("totals").dataset.windows = String(windows.length);
  $("totals-from").textContent = oldestFirst.length ? clock(oldestFirst[0].start) : "";
  $("totals-to").textContent = oldestFirst.length ? clock(oldestFirst[oldestFirst.length - 1].end) : "";
}

function drawHealth(health) {
  $("window-length").textContent = `${health.window_seconds}-second`;
  newestEnd = health.newest_window === null ? null : health.newest_window + health.window_seconds * 1000;
  $("newest").textContent = health.newest_window === null ? "—" : clock(health.newest_window);
  $("rate").textContent = health.events_per_second === null ? "—" : health.events_per_second.toFixed(1);
  tickAge();
}

function duration(seconds) {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

function tickAge() {
  $("age").textContent = newestEnd === null ? "—" : duration(Math.max(0, Math.round((Date.now() - newestEnd) / 1000)));
}

async function selectWiki(name) {
  selected = name;
  for (const tr of document.querySelectorAll("#leaderboard tbody tr, #unusual tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.server === name);
  }
  await drawHistory();
}

async function drawHistory() {
  if (selected === null) return;
  const data = await getJSON(`/api/wikis/${encodeURIComponent(selected)}/history?limit=120`);
  $("history-name").textContent = data.server_name;
  $("history-title").hidden = false;
  $("history").hidden = false;
  drawBars($("history"), data.history.map((p) => p.count));
}

async function refresh() {
  try {
    const windows = await getJSON("/api/windows?limit=120");
    drawTotals(windows);
    if (windows.length) drawLeaderboard(await getJSON(`/api/windows/${windows[0].start}?limit=20`));
    drawUnusual(await getJSON("/api/unusual"));
    drawHealth(await getJSON("/api/health"));
    await drawHistory();
  } catch (error) {
    console.error(error);
  }
}

function connect() {
  const events = new EventSource("/api/stream");
  events.addEventListener("open", () => {
    $("status").textContent = "live";
    $("status").className = "pill live";
    refresh();
  });
  events.addEventListener("window", () => refresh());
  events.addEventListener("error", () => {
    $("status").textContent = "reconnecting…";
    $("status").className = "pill down";
  });
}

refresh();
connect();
setInterval(tickAge, 1000);
