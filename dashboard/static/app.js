// WikiPulse dashboard. Everything from the stream is untrusted: it is only ever
// written with textContent (never innerHTML), so a wiki name stays text.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600_000, DAY = 24 * HOUR;
// Each range reads /api/series at the finest resolution that keeps it to a few hundred
// points ("window": the processor's own windows, whatever their length).
const RANGES = {
  hour: { span: HOUR, resolution: "window", label: "last hour" },
  day: { span: DAY, resolution: "5m", label: "last day" },
  week: { span: 7 * DAY, resolution: "1h", label: "last week" },
  year: { span: 365 * DAY, resolution: "1d", label: "last year" },
};
const UNITS = { "5m": "per 5 minutes", "1h": "per hour", "1d": "per day" };
const PART_ROWS = [
  ["count", "changes"],
  ["human", "by humans"],
  ["bot", "by bots"],
  ["bot_share", "bots' share"],
  ["type:edit", "edits"],
  ["type:new", "new pages"],
  ["type:log", "log actions"],
  ["type:categorize", "categorizations"],
  ["type:external", "external"],
  ["type:other", "other"],
  ["added", "bytes added"],
  ["removed", "bytes removed"],
  ["net_bytes", "net bytes"],
];
const numbers = new Intl.NumberFormat("en-US");
let selected = null;      // the wiki whose history is shown (null: none)
let range = "hour";
let pointStart = null;    // the window or bucket picked in a chart (null: the newest)
let newestStart = null;   // the newest complete window, which the ranges end with
let windowMs = 30_000;
// each resolution's bucket length in seconds, as the API says (/api/health)
let bucketSeconds = { window: 30 };
let newestEnd = null;
let generation = 0;       // bumped when the range or the wiki changes: late answers are dropped
let asked = 0, drawn = 0; // series requests started and the newest one drawn
let shown = { all: null, wiki: null };

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19) + "Z";
}

function stamp(ms, resolution) {
  const iso = new Date(ms).toISOString();
  if (resolution === "1d") return iso.slice(0, 10);
  if (resolution === "1h") return `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`;
  if (resolution === "5m") return `${iso.slice(5, 10)} ${iso.slice(11, 16)}Z`;
  return clock(ms);
}

function span(point, resolution) {
  if (resolution === "1d") return stamp(point.start, resolution);  // a UTC day
  return `${stamp(point.start, resolution)}–${clock(point.end).slice(0, resolution === "window" ? 8 : 5)}Z`;
}

// One bar per window or bucket, placed by time (a gap where none was published), bots
// stacked on humans; points not complete yet (or holding a partial window) are marked.
function drawChart(svg, series) {
  svg.replaceChildren();
  const width = 600, height = Number(svg.viewBox.baseVal.height);
  const length = series.until - series.since;
  const slot = (width * series.bucket_ms) / length;
  const max = Math.max(1, ...series.points.map((p) => p.count));
  const scale = (value) => (value / max) * (height - 10);
  for (const point of series.points) {
    const g = document.createElementNS(SVG, "g");
    g.classList.add("point");
    if (!point.complete) g.classList.add("partial");
    if (point.start === pointStart) g.classList.add("selected");
    g.dataset.start = String(point.start);
    g.dataset.count = String(point.count);
    g.dataset.bot = String(point.bot);
    g.dataset.complete = String(point.complete);
    const x = ((point.start - series.since) / length) * width;
    const w = Math.max(slot - (slot > 4 ? 2 : 0.5), 0.5);
    const hit = document.createElementNS(SVG, "rect");  // the whole column takes the click
    hit.setAttribute("class", "hit");
    const human = document.createElementNS(SVG, "rect");
    human.setAttribute("class", "human");
    const bot = document.createElementNS(SVG, "rect");
    bot.setAttribute("class", "bot");
    const humanHeight = scale(point.human), botHeight = scale(point.bot);
    [[hit, 0, height], [human, height - humanHeight, humanHeight], [bot, height - humanHeight - botHeight, botHeight]]
      .forEach(([rect, y, h]) => {
        rect.setAttribute("x", String(x));
        rect.setAttribute("y", String(y));
        rect.setAttribute("width", String(w));
        rect.setAttribute("height", String(h));
        g.appendChild(rect);
      });
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${span(point, series.resolution)}: ${numbers.format(point.count)} changes, ` +
      `${numbers.format(point.bot)} by bots${point.complete ? "" : " (not complete yet)"}`;
    g.appendChild(title);
    g.addEventListener("click", () => selectPoint(point.start));
    svg.appendChild(g);
  }
  svg.dataset.resolution = series.resolution;
  svg.dataset.points = String(series.points.length);
  return max;
}

function drawAxis(prefix, series) {
  $(`${prefix}-from`).textContent = stamp(series.since, series.resolution);
  $(`${prefix}-to`).textContent = stamp(series.until, series.resolution);
  const peak = Math.max(0, ...series.points.map((p) => p.count));
  $(`${prefix}-peak`).textContent = series.points.length ? `peak ${numbers.format(peak)}` : "nothing yet";
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
    const bots = document.createElement("td");
    bots.className = "num bots";
    const share = wiki.count > 0 ? Math.round((100 * wiki.bot) / wiki.count) : 0;
    if (wiki.mostly_bots) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "mostly bots";
      bots.append(tag, " ");
      tr.classList.add("mostly-bots");
    }
    bots.append(`${share}%`);
    bots.title = `${wiki.bot} of its ${wiki.count} changes by bots`;
    tr.appendChild(bots);
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

// The range ends with the bucket holding the newest complete window: a stalled
// pipeline shows its last hour (the header says how old it is), not an empty chart.
function rangeQuery(wiki) {
  const { span: length, resolution } = RANGES[range];
  const bucket = bucketSeconds[resolution] * 1000;
  const end = newestStart + windowMs;
  const until = Math.ceil(end / bucket) * bucket;
  const params = new URLSearchParams({ resolution, from: String(until - length), to: String(until) });
  if (wiki !== null) params.set("wiki", wiki);
  return `/api/series?${params}`;
}

function unitOf(series) {
  const unit = series.resolution === "window" ? `per ${windowMs / 1000} s window` : UNITS[series.resolution];
  return `changes ${unit}, ${RANGES[range].label}`;
}

async function drawSeries() {
  if (newestStart === null) return;
  const ticket = ++asked, current = generation, wiki = selected;
  const [all, one] = await Promise.all([
    getJSON(rangeQuery(null)),
    wiki === null ? null : getJSON(rangeQuery(wiki)),
  ]);
  // the range or the wiki changed meanwhile, or a later answer is on the page already
  if (current !== generation || ticket < drawn) return;
  drawn = ticket;
  shown = { all, wiki: one };
  drawChart($("totals"), all);
  drawAxis("totals", all);
  $("totals-unit").textContent = unitOf(all);
  $("wiki").hidden = one === null;
  if (one !== null) {
    $("history-name").textContent = one.server_name;
    $("history-unit").textContent = unitOf(one);
    $("history").setAttribute("aria-label", `history of ${one.server_name}`);
    drawChart($("history"), one);
    drawAxis("history", one);
  }
  drawParts();
}

function sum(points) {
  const total = { count: 0, bot: 0, human: 0, added: 0, removed: 0, net_bytes: 0, types: {} };
  for (const p of points) {
    for (const key of ["count", "bot", "human", "added", "removed", "net_bytes"]) total[key] += p[key];
    for (const [type, n] of Object.entries(p.types)) total.types[type] = (total.types[type] || 0) + n;
  }
  return total;
}

function partValue(parts, field) {
  if (field.startsWith("type:")) return parts.types[field.slice(5)] || 0;
  if (field === "bot_share") return parts.count > 0 ? Math.round((100 * parts.bot) / parts.count) : 0;
  return parts[field];
}

function partText(field, value) {
  if (field === "bot_share") return `${value}%`;
  if (field === "net_bytes" && value > 0) return `+${numbers.format(value)}`;
  return numbers.format(value);
}

function partCell(parts, field, of) {
  const td = document.createElement("td");
  td.className = "num";
  td.dataset.of = of;
  if (parts === null) {
    td.textContent = "—";
    return td;
  }
  const value = partValue(parts, field);
  td.dataset.value = String(value);
  if (field === "bot_share") {
    const split = document.createElement("span");
    split.className = "split";
    const bots = document.createElement("span");
    bots.style.width = `${value}%`;
    split.appendChild(bots);
    td.append(split, " ");
  }
  td.append(partText(field, value));
  return td;
}

// Bots against humans, the kinds of change and the bytes of the picked window or bucket
// (the newest by default) and over the whole range, for the wiki shown or all wikis.
function drawParts() {
  const series = shown.wiki || shown.all;
  if (series === null) return;
  const points = series.points;
  let point = points.find((p) => p.start === pointStart) || null;
  if (point === null) {
    pointStart = null;  // the picked one left the range: follow the newest again
    point = points.length ? points[points.length - 1] : null;
  }
  for (const svg of [$("totals"), $("history")]) {
    for (const g of svg.querySelectorAll("g.point")) {
      g.classList.toggle("selected", pointStart !== null && g.dataset.start === String(pointStart));
    }
  }
  const total = points.length ? sum(points) : null;
  const rows = PART_ROWS.map(([field, label]) => {
    const tr = document.createElement("tr");
    tr.dataset.field = field;
    const th = document.createElement("th");
    th.textContent = label;
    tr.append(th, partCell(point, field, "point"), partCell(total, field, "range"));
    return tr;
  });
  $("parts").querySelector("tbody").replaceChildren(...rows);
  $("parts-name").textContent = series.server_name === null ? "all wikis" : series.server_name;
  $("parts").dataset.resolution = series.resolution;
  $("parts").dataset.point = point === null ? "" : String(point.start);
  $("parts").dataset.complete = point === null ? "" : String(point.complete);
  $("parts-point").textContent = point === null ? "—" :
    `${span(point, series.resolution)}${point.complete ? "" : " (not complete yet)"}`;
  $("parts-range").textContent = RANGES[range].label;
  const open = points.filter((p) => !p.complete).length;
  $("parts-note").textContent = (pointStart === null ? "The newest window or bucket; click a bar for another. " : "") +
    (open ? `${open} of the range's ${points.length} ${points.length === 1 ? "point" : "points"} ` +
      `${open === 1 ? "is" : "are"} not complete yet (pale bars).` : "");
}

function selectPoint(start) {
  pointStart = pointStart === start ? null : start;  // a second click follows the newest again
  drawParts();
}

function selectRange(name) {
  if (!(name in RANGES) || name === range) return;
  range = name;
  pointStart = null;
  generation += 1;
  for (const button of document.querySelectorAll("#range button")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === name));
  }
  $("range").dataset.range = name;
  drawSeries().catch((error) => console.error(error));
}

function drawHealth(health) {
  $("window-length").textContent = `${health.window_seconds}-second`;
  windowMs = health.window_seconds * 1000;
  bucketSeconds = health.bucket_seconds;
  newestStart = health.newest_window;
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
  pointStart = null;
  generation += 1;
  for (const tr of document.querySelectorAll("#leaderboard tbody tr, #unusual tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.server === name);
  }
  try {
    await drawSeries();
  } catch (error) {
    console.error(error);
  }
}

async function refresh() {
  try {
    drawHealth(await getJSON("/api/health"));
    if (newestStart !== null) drawLeaderboard(await getJSON(`/api/windows/${newestStart}?limit=20`));
    drawUnusual(await getJSON("/api/unusual"));
    await drawSeries();
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

for (const button of document.querySelectorAll("#range button")) {
  button.addEventListener("click", () => selectRange(button.dataset.range));
}
$("wiki-close").addEventListener("click", () => selectWiki(null));
$("range").dataset.range = range;
refresh();
connect();
setInterval(tickAge, 1000);
