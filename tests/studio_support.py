"""Helpers of the studio tests: a scan folder made of the bundled sample, a live server."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from support import SAMPLE


def scan_folder(root: Path) -> Path:
    """FOLDER with a.png (the sample with a caption bar burnt in) and sub/b.png (a crop)."""
    folder = root / "scans"
    (folder / "sub").mkdir(parents=True)
    with Image.open(SAMPLE) as im:
        rgb = np.asarray(im.convert("RGB")).copy()
    rgb[120:127, 30:150] = (250, 240, 40)  # a date-stamp-like bar the detector may or may not see
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb[:96, :128]).save(folder / "sub" / "b.png")
    return folder


@contextlib.contextmanager
def live_server(folder: Path, output: Path | None = None) -> Iterator[str]:
    """The studio served by uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    from upres.studio.security import allowed_hosts
    from upres.studio.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(folder, output, allowed_hosts("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    # Waits on the server's own flag (set once it listens), not on a guess of how long it takes.
    while not server.started and thread.is_alive():
        started.wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
