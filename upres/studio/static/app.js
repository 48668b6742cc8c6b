// upres studio page: tiles of the scan at the zoom in view, the mask overlay by kind, brush and
// eraser strokes (kept as vectors, sent to the server, which rasterises the one true mask),
// previews of the area in view, and Accept. Plain JS, no build step, nothing from the network.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

// Exposed for the browser test, which waits on these fields instead of on time.
const studio = window.studio = {
  ready: false, image: null, info: null, revision: 0, maskPixels: 0, busy: 0,
  previews: 0, accepted: null, error: null, loading: 0,
};
let options = null;
let tool = "brush";
let strokes = [];       // the edit list; undo moves `redone` items off its end
let redone = [];
let hidden = new Set(); // detected kinds left out of the mask
let view = { scale: 1, ox: 0, oy: 0 }; // screen = (image - o) * scale
let live = null;        // the stroke being drawn
let preview = null;     // { img, rect: [x0, y0, x1, y1], stage }
let panning = null;
let spaceHeld = false;
const tiles = new Map(); // url -> { img, ok }
const shown = new Map(); // "kind/level/x/y" -> the last loaded image, drawn until a newer one loads

function status(text, error = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", error);
  if (error) studio.error = text;
}

async function api(method, path, params, body) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    let message = `${response.status}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

async function busy(label, work) {
  studio.busy += 1;
  status(label + "…");
  try { return await work(); } catch (e) { status(e.message, true); return null; }
  finally { studio.busy -= 1; }
}

// ---- image list ---------------------------------------------------------------------------
async function loadList() {
  const list = (await (await api("GET", "/api/images")).json()).images;
  const ul = $("image-list");
  ul.replaceChildren();
  for (const item of list) {
    const li = document.createElement("li");
    li.dataset.image = item.image;
    li.classList.toggle("current", item.image === studio.image);
    const name = document.createElement("span");
    name.textContent = item.image;
    const badge = document.createElement("span");
    badge.className = "badge " + item.state;
    badge.textContent = item.state;
    li.append(name, badge);
    li.addEventListener("click", () => openImage(item.image));
    ul.append(li);
  }
  return list;
}

// ---- settings -----------------------------------------------------------------------------
const FIELDS = { fill: "s-fill", texture: "s-texture", grain: "s-grain", blend: "s-blend",
  feather: "s-feather", grow: "s-grow", upscale: "s-upscale", scale: "s-scale", mode: "s-mode",
  precision: "s-precision", denoise: "s-denoise", fmt: "s-format" };

function fillSelect(id, values) {
  const select = $(id);
  select.replaceChildren(...values.map((v) => new Option(String(v), String(v))));
}

function readSettings() {
  const d = options.defaults, s = {};
  for (const [key, id] of Object.entries(FIELDS)) {
    const el = $(id);
    if (typeof d[key] === "boolean") s[key] = el.checked;
    else if (Number.isInteger(d[key])) s[key] = parseInt(el.value, 10);
    else if (typeof d[key] === "number") s[key] = parseFloat(el.value);
    else s[key] = el.value;
  }
  return s;
}

function showSettings(s) {
  for (const [key, id] of Object.entries(FIELDS)) {
    const el = $(id);
    if (typeof s[key] === "boolean") el.checked = s[key];
    else el.value = String(s[key]);
  }
}

async function saveSettings() {
  if (!studio.image) return;
  preview = null;
  const r = await busy("Saving settings", () =>
    api("PUT", "/api/settings", { image: studio.image }, readSettings()));
  if (r) status("Settings saved.");
  draw();
}

// ---- opening an image ---------------------------------------------------------------------
async function openImage(name) {
  studio.image = name;
  studio.accepted = null;
  preview = null;
  const info = await busy("Opening " + name + " (detecting)", async () =>
    (await api("GET", "/api/image", { image: name })).json());
  if (!info) return;
  studio.info = info;
  strokes = info.edits.strokes;
  redone = [];
  hidden = new Set(info.edits.hidden);
  studio.revision = info.revision;
  studio.maskPixels = info.mask_pixels;
  showSettings(info.settings);
  showKinds();
  fit();
  for (const li of $("image-list").children) li.classList.toggle("current", li.dataset.image === name);
  status(`${name}: ${info.width}x${info.height}, ${info.mask_pixels} pixels masked` +
         (info.state === "accepted" ? " (accepted)" : ""));
  $("command").textContent = info.accepted ? info.accepted.command.join(" ") : "";
}

function showKinds() {
  const box = $("kinds");
  box.replaceChildren();
  for (const kind of studio.info.kinds) {
    const label = document.createElement("label");
    label.className = "kind";
    const check = document.createElement("input");
    check.type = "checkbox";
    check.checked = !hidden.has(kind.name);
    check.dataset.kind = kind.name;
    check.addEventListener("change", () => {
      if (check.checked) hidden.delete(kind.name); else hidden.add(kind.name);
      saveEdits();
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = kind.colour;
    label.append(check, swatch, document.createTextNode(` ${kind.name} (${kind.pixels})`));
    box.append(label);
  }
  if (!studio.info.kinds.length) box.textContent = options.detector ? "nothing detected" : "no detector";
}

async function saveEdits() {
  preview = null;
  const r = await busy("Saving the mask", async () =>
    (await api("PUT", "/api/edits", { image: studio.image },
               { strokes, hidden: [...hidden] })).json());
  if (r) {
    studio.revision = r.revision;
    studio.maskPixels = r.mask_pixels;
    status(`${r.mask_pixels} pixels masked.`);
  }
  draw();
}

// ---- input --------------------------------------------------------------------------------
canvas.addEventListener("pointerdown", (event) => {
  if (!studio.info) return;
  canvas.setPointerCapture(event.pointerId);
  if (tool === "pan" || spaceHeld || event.button === 1 || event.button === 2) {
    panning = { x: event.clientX, y: event.clientY, ox: view.ox, oy: view.oy };
    return;
  }
  const radius = parseInt($("size").value, 10) / 2;
  const [x, y] = toImage(event);
  live = { op: tool === "eraser" ? "erase" : "paint", radius, points: [[round1(x), round1(y)]] };
  draw();
});

canvas.addEventListener("pointermove", (event) => {
  if (panning) {
    view.ox = panning.ox - (event.clientX - panning.x) / view.scale;
    view.oy = panning.oy - (event.clientY - panning.y) / view.scale;
    draw();
  } else if (live) {
    const [x, y] = toImage(event);
    const [lx, ly] = live.points[live.points.length - 1];
    if (Math.hypot(x - lx, y - ly) * view.scale >= 1) live.points.push([round1(x), round1(y)]);
    draw();
  }
});

function endPointer() {
  panning = null;
  if (!live) return;
  strokes = [...strokes, live];
  redone = [];
  live = null;
  saveEdits();
}
canvas.addEventListener("pointerup", endPointer);
canvas.addEventListener("pointercancel", endPointer);
canvas.addEventListener("contextmenu", (event) => event.preventDefault());
canvas.addEventListener("wheel", (event) => {
  event.preventDefault();
  const r = canvas.getBoundingClientRect();
  zoomAt(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - r.left, event.clientY - r.top);
}, { passive: false });

function round1(v) { return Math.round(v * 10) / 10; }

function setTool(name) {
  tool = name;
  for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === name);
}

function undo() {
  if (!strokes.length) return;
  redone.push(strokes[strokes.length - 1]);
  strokes = strokes.slice(0, -1);
  saveEdits();
}

function redo() {
  if (!redone.length) return;
  strokes = [...strokes, redone.pop()];
  saveEdits();
}

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select")) return;
  const key = event.key.toLowerCase();
  if ((event.ctrlKey || event.metaKey) && key === "z") { event.preventDefault(); event.shiftKey ? redo() : undo(); }
  else if ((event.ctrlKey || event.metaKey) && key === "y") { event.preventDefault(); redo(); }
  else if (key === " ") { spaceHeld = true; event.preventDefault(); }
  else if (key === "b") setTool("brush");
  else if (key === "e") setTool("eraser");
  else if (key === "h") setTool("pan");
  else if (key === "m") { $("show-mask").checked = !$("show-mask").checked; draw(); }
  else if (key === "+" || key === "=") zoomAt(1.25, canvas.width / 2, canvas.height / 2);
  else if (key === "-") zoomAt(0.8, canvas.width / 2, canvas.height / 2);
  else if (key === "0") fit();
});
document.addEventListener("keyup", (event) => { if (event.key === " ") spaceHeld = false; });

// ---- preview and accept -------------------------------------------------------------------
async function runPreview(stage) {
  if (!studio.info) return;
  let [x0, y0, x1, y1] = visibleRect();
  // The server previews at most this many input pixels: keep the centre of the view.
  const limit = stage === "upscale" && $("s-upscale").checked ? 512 * 512 : 2048 * 2048;
  const area = (x1 - x0) * (y1 - y0);
  if (area > limit) {
    const k = Math.sqrt(limit / area), cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    const hw = Math.floor((x1 - x0) * k / 2), hh = Math.floor((y1 - y0) * k / 2);
    [x0, y0, x1, y1] = [Math.floor(cx) - hw, Math.floor(cy) - hh, Math.floor(cx) + hw, Math.floor(cy) + hh];
  }
  const response = await busy(`Previewing the ${stage}`, () =>
    api("POST", "/api/preview", { image: studio.image },
        { rect: [x0, y0, x1, y1], stage, settings: readSettings() }));
  if (!response) return;
  const rect = response.headers.get("x-preview-rect").split(",").map(Number);
  const img = new Image();
  img.src = URL.createObjectURL(await response.blob());
  await img.decode();
  if (preview) URL.revokeObjectURL(preview.img.src);
  preview = { img, rect, stage };
  studio.previews += 1;
  $("preview-label").textContent = `${stage} preview, ${rect[2] - rect[0]}x${rect[3] - rect[1]} px` +
    ` x${response.headers.get("x-preview-scale")}: after | before`;
  status(`Preview of the ${stage} ready.`);
  draw();
}

async function runAccept() {
  if (!studio.info) return;
  const done = await busy("Accepting (writing the output)", async () =>
    (await api("POST", "/api/accept", { image: studio.image }, { settings: readSettings() })).json());
  if (!done) return;
  studio.accepted = done;
  $("command").textContent = done.command.join(" ");
  status(`Accepted: ${done.output} and ${done.mask} written (${done.status}).`);
  await loadList();
}

// ---- start --------------------------------------------------------------------------------
async function start() {
  options = await (await api("GET", "/api/options")).json();
  $("folder").textContent = options.folder + " → " + options.output;
  fillSelect("s-fill", options.fills);
  fillSelect("s-blend", options.blends);
  fillSelect("s-scale", options.scales);
  fillSelect("s-mode", options.modes);
  fillSelect("s-precision", options.precisions);
  fillSelect("s-denoise", options.denoise);
  fillSelect("s-format", options.formats);
  showSettings(options.defaults);
  for (const id of Object.values(FIELDS)) $(id).addEventListener("change", saveSettings);
  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));
  $("size").addEventListener("input", () => { $("size-value").textContent = $("size").value; });
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("zoom-in").addEventListener("click", () => zoomAt(1.25, canvas.width / 2, canvas.height / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(0.8, canvas.width / 2, canvas.height / 2));
  $("zoom-fit").addEventListener("click", fit);
  $("slider").addEventListener("input", draw);
  $("show-mask").addEventListener("change", draw);
  $("preview-clean").addEventListener("click", () => runPreview("clean"));
  $("preview-upscale").addEventListener("click", () => runPreview("upscale"));
  $("accept").addEventListener("click", runAccept);
  window.addEventListener("resize", resize);
  setTool("brush");
  resize();
  const list = await loadList();
  // Resume where the folder was left: the first image not yet accepted.
  const next = list.find((i) => i.state !== "accepted" && i.state !== "unreadable") || list[0];
  if (next) await openImage(next.image);
  studio.ready = true;
}

start().catch((e) => status(e.message, true));
