"""Paths as they appear in messages."""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: Path | str | bytes) -> str:
    """``path`` as one printable line: control characters escaped (a file name may hold a
    newline) and bytes that are not UTF-8 shown as ``\\xNN`` instead of lone surrogates, which
    would make printing or encoding the message fail."""
    text = os.fsdecode(path)
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of an undecodable byte
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif not char.isprintable():  # also lone surrogates of other origins
            shown.append(char.encode("unicode_escape").decode("ascii"))
        else:
            shown.append(char)
    return "".join(shown)
