"""Test-only pause points: a test stops a run at a chosen point and kills or signals it there,
instead of guessing the moment by timing (a fast machine finishes a batch before a timed kill).

Off unless ``UPRES_TEST_PAUSE_DIR`` names a folder; then each point costs a file read. A point is
armed by a file of its name in that folder holding N (empty: 1). The N-th time one process
reaches it, that process claims the file (removes it, so one process pauses, once: Ray workers
share the folder), writes ``<point>.paused`` holding its pid and waits until ``<point>.go``
exists. The points:

- ``finished``: in the `upres run` / `upres clean` process, after an image's result is in
  (written, skipped or failed), local or Ray batch alike;
- ``before-rename``: a complete temporary file, fsynced, not yet renamed onto its final name
  (any atomic write: outputs, sidecars, reports).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

ENV = "UPRES_TEST_PAUSE_DIR"
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def reached(point: str) -> None:
    folder = os.environ.get(ENV)
    if not folder:
        return
    armed = Path(folder) / point
    with _lock:
        _counts[point] += 1
        count = _counts[point]
    try:
        text = armed.read_text().strip()
    except OSError:
        return
    if count < (int(text) if text.isdigit() else 1):
        return
    try:
        armed.unlink()
    except FileNotFoundError:
        return  # another process or thread claimed it
    # Renamed into place: a test polling for the file never reads it half-written.
    note = Path(folder) / f"{point}.paused.{os.getpid()}"
    note.write_text(f"{os.getpid()}\n")
    os.replace(note, Path(folder) / f"{point}.paused")
    go = Path(folder) / f"{point}.go"
    while not go.exists():
        time.sleep(0.01)
