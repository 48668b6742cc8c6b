"""One lock per Upscaler or Cleaner: calls from several threads run one at a time, and nothing
runs after close().

Why one at a time: the memory target is a plan for one image in flight, and two concurrent
calls would each take the whole of it; and each call already keeps every core busy (ONNX
Runtime's intra-op threads), so running two at once would not be faster. The lock is reentrant,
so a `map` loop may call `upscale` from its own body.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from upres.api.errors import ClosedError


class Guard:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.closed = False
        self._lock = threading.RLock()

    @contextmanager
    def using(self) -> Iterator[None]:
        with self._lock:
            if self.closed:
                raise ClosedError(f"this {self.owner} is closed; create a new one")
            yield

    @contextmanager
    def held(self) -> Iterator[None]:
        """The lock alone, open or closed: for winding down what is still running."""
        with self._lock:
            yield

    @contextmanager
    def closing(self) -> Iterator[bool]:
        """Held while the owner frees its resources; yields whether it was still open (close()
        may be called more than once). Waits for a call in progress to end first."""
        with self._lock:
            was_open = not self.closed
            self.closed = True
            yield was_open
