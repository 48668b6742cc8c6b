// upres studio page, the view: what is drawn where. Tiles of the scan and of the mask overlay at
// the pyramid level that matches the zoom, only those in view (a large scan is never sent whole),
// the preview under its before/after split, and the stroke being drawn. Loaded before app.js,
// whose state (view, studio, preview, live, tiles) these functions read when called.
"use strict";

// ---- view ---------------------------------------------------------------------------------
function resize() {
  const rect = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(rect.width));
  canvas.height = Math.max(1, Math.round(rect.height));
  draw();
}

function fit() {
  const info = studio.info;
  if (!info) return;
  const s = Math.min(canvas.width / info.width, canvas.height / info.height) * 0.95;
  view.scale = s;
  view.ox = (info.width - canvas.width / s) / 2;
  view.oy = (info.height - canvas.height / s) / 2;
  draw();
}

function zoomAt(factor, sx, sy) {
  const s = Math.min(64, Math.max(1 / 256, view.scale * factor));
  const ix = view.ox + sx / view.scale, iy = view.oy + sy / view.scale;
  view.scale = s;
  view.ox = ix - sx / s;
  view.oy = iy - sy / s;
  draw();
}

function toImage(event) {
  const r = canvas.getBoundingClientRect();
  return [view.ox + (event.clientX - r.left) / view.scale, view.oy + (event.clientY - r.top) / view.scale];
}

function visibleRect() {
  const info = studio.info;
  const x0 = Math.max(0, Math.floor(view.ox)), y0 = Math.max(0, Math.floor(view.oy));
  const x1 = Math.min(info.width, Math.ceil(view.ox + canvas.width / view.scale));
  const y1 = Math.min(info.height, Math.ceil(view.oy + canvas.height / view.scale));
  return [x0, y0, x1, y1];
}

function tileImage(url) {
  let entry = tiles.get(url);
  if (!entry) {
    entry = { img: new Image(), ok: false };
    studio.loading += 1;
    entry.img.onload = () => { entry.ok = true; studio.loading -= 1; draw(); };
    entry.img.onerror = () => { studio.loading -= 1; };
    entry.img.src = url;
    tiles.set(url, entry);
    if (tiles.size > 600) tiles.delete(tiles.keys().next().value); // oldest first
  }
  return entry.ok ? entry.img : null;
}

function drawLayer(kind, level) {
  // Only the tiles in view, at the level that matches the zoom: a large scan is never sent whole.
  const info = studio.info, f = 2 ** level, span = info.tile * f;
  const [x0, y0, x1, y1] = visibleRect();
  for (let ty = Math.floor(y0 / span); ty * span < y1; ty++) {
    for (let tx = Math.floor(x0 / span); tx * span < x1; tx++) {
      const q = new URLSearchParams({ image: studio.image, level, x: tx, y: ty });
      if (kind === "overlay") q.set("rev", studio.revision);
      const key = `${studio.image}/${kind}/${level}/${tx}/${ty}`;
      let img = tileImage(`/api/${kind}?${q}`);
      if (img) shown.set(key, img); else img = shown.get(key); // no flicker while a new one loads
      if (!img) continue;
      const ix = tx * span, iy = ty * span;
      ctx.drawImage(img, (ix - view.ox) * view.scale, (iy - view.oy) * view.scale,
                    img.naturalWidth * f * view.scale, img.naturalHeight * f * view.scale);
    }
  }
}

function draw() {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  $("zoom-value").textContent = Math.round(view.scale * 100) + "%";
  if (!studio.info) return;
  const level = Math.max(0, Math.min(studio.info.levels - 1, Math.floor(Math.log2(1 / view.scale))));
  ctx.imageSmoothingEnabled = view.scale < 1;
  drawLayer("tile", level);
  if (preview) drawPreview();
  if ($("show-mask").checked) {
    ctx.save();
    if (preview) {
      // The mask stays off the "after" side of the preview, so the fill itself can be judged.
      const [x0, y0, x1, y1] = preview.rect, split = parseInt($("slider").value, 10) / 100;
      ctx.beginPath();
      ctx.rect(0, 0, canvas.width, canvas.height);
      ctx.rect((x0 - view.ox) * view.scale + (x1 - x0) * view.scale * split, (y0 - view.oy) * view.scale,
               -(x1 - x0) * view.scale * split, (y1 - y0) * view.scale);
      ctx.clip("evenodd");
    }
    drawLayer("overlay", level);
    ctx.restore();
  }
  if (live) drawStroke(live);
}

function drawPreview() {
  const [x0, y0, x1, y1] = preview.rect;
  const split = parseInt($("slider").value, 10) / 100;
  const sx = (x0 - view.ox) * view.scale, sy = (y0 - view.oy) * view.scale;
  const sw = (x1 - x0) * view.scale, sh = (y1 - y0) * view.scale;
  ctx.save();
  ctx.beginPath();
  ctx.rect(sx, sy, sw * split, sh); // after on the left of the slider, before on the right
  ctx.clip();
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(preview.img, sx, sy, sw, sh);
  ctx.restore();
  ctx.strokeStyle = "#fff";
  ctx.strokeRect(sx, sy, sw, sh);
  ctx.beginPath();
  ctx.moveTo(sx + sw * split, sy);
  ctx.lineTo(sx + sw * split, sy + sh);
  ctx.stroke();
}

function drawStroke(stroke) {
  ctx.save();
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = Math.max(1, 2 * stroke.radius * view.scale);
  ctx.strokeStyle = stroke.op === "erase" ? "rgba(0,0,0,0.6)" : studio.info.brush_colour + "aa";
  ctx.beginPath();
  stroke.points.forEach(([x, y], i) => {
    const px = (x - view.ox) * view.scale, py = (y - view.oy) * view.scale;
    if (i === 0) { ctx.moveTo(px, py); ctx.lineTo(px + 0.01, py); } else ctx.lineTo(px, py);
  });
  ctx.stroke();
  ctx.restore();
}
