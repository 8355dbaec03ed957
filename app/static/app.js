// CVSM search page: upload a clip, list the matches with players, draw the embedding map.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let catalogMap = { points: [], total: 0 };

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function authHeaders() {
  // A private catalog's key, kept for this tab only; sent as X-API-Key, never in a URL.
  const key = sessionStorage.getItem("cvsm-key");
  return key ? { "X-API-Key": key } : {};
}

async function fetchJson(url, options = {}) {
  const res = await fetch(url, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) $("key-box").hidden = false;
  if (!res.ok) {
    const msg = body.error ? body.error.message : `HTTP ${res.status}`;
    throw new Error(msg);
  }
  return body;
}

function colourOf(name) {
  // FNV-1a hash, spread round the colour wheel by the golden angle: similar names, far hues.
  let h = 2166136261;
  for (const c of name || "?") h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  return `hsl(${Math.round((h % 1000) * 137.508) % 360}, 65%, 48%)`;
}

function drawMap(query, hitIds) {
  const svg = $("map");
  svg.replaceChildren();
  const pts = catalogMap.points.slice();
  const all = query ? pts.concat([{ x: query[0], y: query[1] }]) : pts;
  if (all.length === 0) { $("map-note").textContent = "The catalog is empty."; return; }
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => 20 + 360 * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
  const sy = (y) => 380 - 360 * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
  for (const p of pts) {
    const c = document.createElementNS(SVG, "circle");
    const hit = hitIds.has(p.id);
    c.setAttribute("cx", sx(p.x)); c.setAttribute("cy", sy(p.y));
    c.setAttribute("r", hit ? 6 : 3.5);
    c.setAttribute("fill", colourOf(p.artist));
    c.setAttribute("class", hit ? "point hit" : "point");
    const t = document.createElementNS(SVG, "title");
    t.textContent = `${p.title || p.id} — ${p.artist || "unknown"}`;
    c.appendChild(t); svg.appendChild(c);
  }
  if (query) {
    const star = document.createElementNS(SVG, "path");
    const [cx, cy] = [sx(query[0]), sy(query[1])];
    let d = "";
    for (let i = 0; i < 10; i++) {
      const r = i % 2 ? 5 : 12, a = Math.PI / 5 * i - Math.PI / 2;
      d += `${i ? "L" : "M"}${cx + r * Math.cos(a)},${cy + r * Math.sin(a)}`;
    }
    star.setAttribute("d", d + "Z"); star.setAttribute("class", "query");
    star.setAttribute("id", "query-point");
    svg.appendChild(star);
  }
  drawLegend(pts, hitIds);
  const shown = catalogMap.points.length;
  $("map-note").textContent = shown < catalogMap.total
    ? `${shown} of ${catalogMap.total} tracks shown` : `${shown} tracks`;
}

function drawLegend(points, hitIds) {
  // One swatch per artist (colour as on the map), the query's matches' artists first.
  const counts = new Map();
  for (const p of points) {
    const a = p.artist || "unknown";
    const c = counts.get(a) || { n: 0, hits: 0 };
    c.n += 1; if (hitIds.has(p.id)) c.hits += 1;
    counts.set(a, c);
  }
  const names = [...counts.keys()].sort((a, b) =>
    (counts.get(b).hits - counts.get(a).hits) || a.localeCompare(b));
  const legend = $("legend");
  legend.replaceChildren();
  for (const name of names.slice(0, 24)) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = colourOf(name === "unknown" ? "" : name);
    const c = counts.get(name);
    li.append(swatch, `${name} (${c.n}${c.hits ? `, ${c.hits} matched` : ""})`);
    if (c.hits) li.className = "matched";
    legend.appendChild(li);
  }
  if (names.length > 24) legend.append(`… and ${names.length - 24} more artists`);
}

function showUsedSeconds(query) {
  const strip = $("used");
  strip.replaceChildren();
  if (!query.used_seconds) { strip.hidden = true; return; }
  strip.hidden = false;
  const what = query.selection === "singing" ? "singing" : "sound";
  const used = query.used_seconds.filter(Boolean).length;
  const label = document.createElement("span");
  label.textContent = `Seconds of your clip the voice was taken from (${what}): ` +
    `${used} of ${query.used_seconds.length} `;
  strip.appendChild(label);
  query.used_seconds.forEach((on, i) => {
    const cell = document.createElement("span");
    cell.className = on ? "sec on" : "sec";
    cell.title = `${i}-${i + 1} s: ${on ? "used" : `no ${what}, skipped`}`;
    strip.appendChild(cell);
  });
}

async function loadMap() {
  try {
    catalogMap = await fetchJson("/v1/map");
    drawMap(null, new Set());
  } catch (err) {
    $("map-note").textContent = `Map unavailable: ${err.message}`;
  }
}

function renderResults(results) {
  const list = $("results");
  list.replaceChildren();
  for (const hit of results) {
    const li = document.createElement("li");
    li.className = "result";
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("span");
    name.textContent = `${hit.title || hit.id} — ${hit.artist || "unknown"}`;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    score.title = "cosine similarity of the two voices' embeddings";
    meta.append(name, score);
    if (hit.match) {
      const match = document.createElement("span");
      match.className = `match p${Math.min(9, Math.floor(hit.same_singer * 10))}`;
      match.textContent = `${hit.match} (${Math.round(hit.same_singer * 100)}%)`;
      match.title = "calibrated on singers the model never heard, at even prior odds";
      meta.append(match);
    }
    const audio = document.createElement("audio");
    audio.controls = true; audio.preload = "none"; audio.src = hit.audio_url;
    li.append(meta, audio);
    list.appendChild(li);
  }
  if (results.length === 0) setStatus("No matches.");
}

async function search(file) {
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("k", $("k").value || "10");
  if ($("exclude").value.trim()) form.append("exclude_artist", $("exclude").value.trim());
  setStatus(`Searching with ${file.name}…`);
  try {
    const body = await fetchJson("/v1/search", { method: "POST", body: form });
    const secs = body.query.duration_s != null ? `${body.query.duration_s.toFixed(1)} s` : "";
    if (body.query.singing_found === false) {
      // No voice in the clip: no singer to match, so no list of verdicts either.
      setStatus(`No singing found in ${file.name} (${secs}): there is no voice to match. ` +
        "Try a clip where someone sings.");
      $("results").replaceChildren();
      showUsedSeconds(body.query);
      drawMap(null, new Set());
      return;
    }
    setStatus(`${body.results.length} matches for ${file.name} (${secs})`);
    renderResults(body.results);
    showUsedSeconds(body.query);
    if (body.query.map_version !== catalogMap.version) catalogMap = await fetchJson("/v1/map");
    drawMap(body.query.point, new Set(body.results.map((h) => h.id)));
  } catch (err) {
    setStatus(`Search failed: ${err.message}`, true);
    $("results").replaceChildren();
    $("used").hidden = true;
  }
}

function setupKey() {
  $("key-save").addEventListener("click", () => {
    sessionStorage.setItem("cvsm-key", $("key").value.trim());
    $("key").value = "";
    $("key-box").hidden = true;
    setStatus("");
    loadMap();
  });
}

function setupDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => search(e.target.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => {
    $("file").value = "";  // the picker no longer names the file being searched
    search(e.dataTransfer.files[0]);
  });
}

window.addEventListener("error", (e) => setStatus(`Page error: ${e.message}`, true));
window.addEventListener("unhandledrejection",
  (e) => setStatus(`Page error: ${e.reason && e.reason.message || e.reason}`, true));
setupKey();
setupDrop();
loadMap();
