"""Rows of one large array pass split among the host's cores, for the element-wise host passes
that sit between two inference runs (every inference thread idle then): each row is computed
as it would be alone, so the result is the same on any number of cores."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import pairwise

MAX_PARTS = 4  # more gained nothing measurable on 640x480 -> x4 passes


def available_cores() -> int:
    """The cores this process may run on (its affinity), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Helpers:
    """The threads that take the other parts: one per core but the caller's, started on first
    use and shared by every pass."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size: int | None = None

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = max(0, min(MAX_PARTS, available_cores()) - 1)
        return self._size

    def submit(self, work: Callable[[int, int], None], start: int, stop: int) -> Future[None]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max(1, self.size), thread_name_prefix="upres-rows")
        return self._pool.submit(work, start, stop)


_helpers = _Helpers()


def in_row_parts(rows: int, work: Callable[[int, int], None], align: int = 1,
                 min_rows: int = 1) -> None:
    """``work(start, stop)`` over 0..rows in up to one part per core (starts on multiples of
    ``align``, parts of ``min_rows`` or more), the caller taking the first; returns when every
    part has ended, raising the first part's error."""
    units = -(-rows // align)
    parts = max(1, min(_helpers.size + 1, units, rows // max(1, min_rows)))
    if parts == 1:
        work(0, rows)
        return
    edges = [min(rows, (units * i // parts) * align) for i in range(parts + 1)]
    pending = [_helpers.submit(work, a, b) for a, b in pairwise(edges[1:])]
    try:
        work(edges[0], edges[1])
    finally:  # the parts write into the caller's arrays: none may outlive this call
        errors = [f.exception() for f in pending]
    for error in errors:
        if error is not None:
            raise error
