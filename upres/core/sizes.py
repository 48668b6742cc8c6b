"""Memory sizes as users write them (`--memory 2GiB`) and as reports print them."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024**2
GIB = 1024**3

_UNITS: dict[str, int] = {
    "": 1, "B": 1,
    "K": KIB, "KI": KIB, "KIB": KIB, "M": MIB, "MI": MIB, "MIB": MIB,
    "G": GIB, "GI": GIB, "GIB": GIB, "T": 1024**4, "TI": 1024**4, "TIB": 1024**4,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """"512MiB", "2GiB", "1.5GB", "800M", "123456" -> bytes (K/M/G/T alone are binary)."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"--memory: cannot read {text!r}; use e.g. 512MiB or 2GiB")
    size = round(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"--memory: {text!r} is no memory at all; use e.g. 512MiB or 2GiB")
    return size


def format_size(n: int | float) -> str:
    """Bytes -> "1.50 GiB" (binary units, two decimals; plain bytes below 1 KiB)."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("TiB", 1024**4), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size:
            return f"{sign}{n / size:.2f} {unit}"
    return f"{sign}{int(n)} B"
