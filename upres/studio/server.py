"""The studio's HTTP side: the page, its static files, and the JSON API under /api/.

Handlers are plain functions (Starlette runs them in its thread pool); the pixel work of previews
and accepts runs one at a time, so a burst of pans cannot hold several full-size copies of a scan.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from upres.cleaning.text_detect import available as detection_available
from upres.core.choices import CleanBlend, Mode
from upres.imageio import ImageError, probe_image
from upres.runtime.tiling import Rect
from upres.studio.accept import AcceptError, accept, accepted_state
from upres.studio.edits import EditError, Edits, hex_colour
from upres.studio.engines import Engines
from upres.studio.preview import STAGES, PreviewError, make_preview
from upres.studio.security import SameOriginOnly
from upres.studio.session import TILE, ImageSession, encode_png, levels_for
from upres.studio.settings import DENOISE, FILLS, FORMATS, SettingsError, StudioSettings
from upres.studio.workspace import NotServed, Workspace

STATIC = Path(__file__).resolve().parent / "static"
_SESSIONS_KEPT = 2  # decoded scans held at once
_NO_STORE = {"cache-control": "no-store"}
_CSP = ("default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class Studio:
    def __init__(self, workspace: Workspace, engines: Engines) -> None:
        self.workspace = workspace
        self.engines = engines
        self._sessions: OrderedDict[tuple[str, int, int], ImageSession] = OrderedDict()
        self._sessions_lock = threading.Lock()
        self.work = threading.Lock()

    def session(self, rel: str) -> ImageSession:
        source = self.workspace.source(rel)
        stat = source.stat()
        key = (rel, stat.st_mtime_ns, stat.st_size)  # a file replaced on disk is opened again
        with self._sessions_lock:
            if key not in self._sessions:
                self._sessions[key] = ImageSession(self.workspace, rel)
                while len(self._sessions) > _SESSIONS_KEPT:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
            return self._sessions[key]

    def edits(self, rel: str) -> Edits:
        return Edits.from_json(self.workspace.image_state(rel).get("edits", {}))

    def settings(self, rel: str) -> StudioSettings:
        return StudioSettings.from_json(self.workspace.image_state(rel).get("settings", {}))


def _image(request: Request) -> str:
    rel = request.query_params.get("image")
    if not rel:
        raise NotServed("no image= given")
    return rel


def _int(request: Request, name: str) -> int:
    try:
        return int(request.query_params[name])
    except (KeyError, ValueError):
        raise PreviewError(f"{name}= must be an integer") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except ValueError:
        raise SettingsError("the body is not JSON") from None


def _guarded(handler: Callable[[Request, bytes], Response]) -> Callable[[Request], Any]:
    """The handler in the thread pool (pixel work must not stop the event loop), with the errors a
    request can cause answered as JSON with their HTTP status; anything else is a bug."""
    async def endpoint(request: Request) -> Response:
        body = await request.body() if request.method not in ("GET", "HEAD") else b""
        try:
            return await run_in_threadpool(handler, request, body)
        except NotServed as exc:
            return JSONResponse({"error": str(exc)}, 404)
        except IndexError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        except (SettingsError, EditError, PreviewError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except AcceptError as exc:
            return JSONResponse({"error": str(exc)}, 409)
        except ImageError as exc:
            return JSONResponse({"error": str(exc)}, 422)
    return endpoint


def build_app(studio: Studio, hosts: frozenset[str]) -> SameOriginOnly:
    ws = studio.workspace

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"content-security-policy": _CSP})

    def options(request: Request, body: bytes) -> Response:
        return JSONResponse({
            "defaults": StudioSettings().record(), "fills": FILLS, "blends": list(CleanBlend),
            "formats": FORMATS, "modes": list(Mode), "scales": [2, 4],
            "precisions": ["fp32", "int8"], "denoise": list(DENOISE), "stages": STAGES, "tile": TILE,
            "detector": detection_available(), "folder": str(ws.folder), "output": str(ws.output),
        }, headers=_NO_STORE)

    def images(request: Request, body: bytes) -> Response:
        listed = []
        for item in ws.images():
            state = ws.image_state(item.rel)
            entry: dict[str, Any] = {"image": item.rel, "state": accepted_state(ws, state)}
            try:
                meta = probe_image(item.source)
                entry |= {"width": meta.width, "height": meta.height}
            except ImageError as exc:
                entry |= {"state": "unreadable", "error": str(exc)}
            if entry["state"] == "accepted":
                entry["output"] = state["accepted"]["output"]
            listed.append(entry)
        return JSONResponse({"images": listed}, headers=_NO_STORE)

    def image(request: Request, body: bytes) -> Response:
        rel = _image(request)
        s = studio.session(rel)
        state = ws.image_state(rel)
        edits = studio.edits(rel)
        labels = s.labels(edits)
        return JSONResponse({
            "image": rel, "width": s.shape[1], "height": s.shape[0], "bit_depth": s.meta.bit_depth,
            "levels": levels_for(*s.shape), "tile": TILE,
            "kinds": [{"name": k, "colour": hex_colour(k), "pixels": int(m.sum())}
                      for k, m in s.kinds.items()],
            "brush_colour": hex_colour("brush"),
            "edits": edits.record(), "settings": studio.settings(rel).record(),
            "revision": state.get("revision", 0), "mask_pixels": int((labels > 0).sum()),
            "state": accepted_state(ws, state), "accepted": state.get("accepted"),
        }, headers=_NO_STORE)

    def tile(request: Request, body: bytes) -> Response:
        s = studio.session(_image(request))
        pixels = s.image_tile(_int(request, "level"), _int(request, "x"), _int(request, "y"))
        return Response(encode_png(pixels), media_type="image/png",
                        headers={"cache-control": "private, max-age=3600"})

    def overlay(request: Request, body: bytes) -> Response:
        rel = _image(request)
        s = studio.session(rel)
        pixels = s.overlay_tile(studio.edits(rel), _int(request, "level"), _int(request, "x"),
                                _int(request, "y"))
        return Response(encode_png(pixels), media_type="image/png", headers=_NO_STORE)

    def put_edits(request: Request, body: bytes) -> Response:
        rel = _image(request)
        edits = Edits.from_json(_json(body))
        revision = int(ws.image_state(rel).get("revision", 0)) + 1
        ws.update_image(rel, edits=edits.record(), revision=revision, changed=True)
        mask = studio.session(rel).mask(edits)
        return JSONResponse({"revision": revision, "mask_pixels": int(mask.sum())})

    def put_settings(request: Request, body: bytes) -> Response:
        rel = _image(request)
        settings = StudioSettings.from_json(_json(body))
        if settings != studio.settings(rel):
            ws.update_image(rel, settings=settings.record(), changed=True)
        return JSONResponse({"settings": settings.record()})

    def preview(request: Request, body: bytes) -> Response:
        rel = _image(request)
        data = _json(body)
        if not isinstance(data, dict):
            raise PreviewError("the body is {rect: [x0, y0, x1, y1], stage, settings}")
        rect = data.get("rect")
        if not (isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, int) for v in rect)):
            raise PreviewError("rect must be [x0, y0, x1, y1], integers (input pixels)")
        settings = StudioSettings.from_json(data.get("settings", {}))
        s = studio.session(rel)
        with studio.work:
            made = make_preview(s, studio.edits(rel), settings, studio.engines,
                                Rect(rect[1], rect[3], rect[0], rect[2]), str(data.get("stage")))
        r = made.rect
        return Response(encode_png(made.samples), media_type="image/png", headers={
            **_NO_STORE, "x-preview-rect": f"{r.x0},{r.y0},{r.x1},{r.y1}",
            "x-preview-scale": str(made.scale)})

    def do_accept(request: Request, body: bytes) -> Response:
        rel = _image(request)
        data = _json(body)
        settings = StudioSettings.from_json(data.get("settings", {}) if isinstance(data, dict) else {})
        s = studio.session(rel)
        edits = studio.edits(rel)
        with studio.work:
            done = accept(ws, s, edits, settings, studio.engines)
        record = done.record(ws)
        ws.update_image(rel, settings=settings.record(), accepted=record, changed=False)
        return JSONResponse(record)

    routes = [
        Route("/", index),
        Route("/api/options", _guarded(options)),
        Route("/api/images", _guarded(images)),
        Route("/api/image", _guarded(image)),
        Route("/api/tile", _guarded(tile)),
        Route("/api/overlay", _guarded(overlay)),
        Route("/api/edits", _guarded(put_edits), methods=["PUT"]),
        Route("/api/settings", _guarded(put_settings), methods=["PUT"]),
        Route("/api/preview", _guarded(preview), methods=["POST"]),
        Route("/api/accept", _guarded(do_accept), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return SameOriginOnly(Starlette(routes=routes), hosts)


def create_app(folder: Path, output: Path | None = None, hosts: frozenset[str] = frozenset(),
               engines: Engines | None = None) -> SameOriginOnly:
    return build_app(Studio(Workspace(folder, output), engines or Engines()), hosts)
