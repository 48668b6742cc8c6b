"""libtiff's messages, captured per thread instead of printed on stderr.

Pillow decodes compressed TIFFs through its own copy of libtiff, whose default handlers print
warnings and errors ("ThunderSetupDecode: Wrong bitspersample value ...") on stderr, beside the
one `failed:` line upres prints for the file, and naming no file. Here libtiff's global handlers
are replaced (once, for that copy of the library): inside `captured()` the messages are kept for
the failure's reason, outside it they are dropped. Where the library cannot be found (Pillow
linked statically, as on Windows), nothing changes.
"""

from __future__ import annotations

import ctypes
import platform
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_Handler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
_local = threading.local()
_lock = threading.Lock()
_installed: list[object] = []  # the callbacks, kept alive while libtiff may call them
# A handler's va_list arrives as a pointer on these (an array type on x86-64, a struct passed
# by reference on AArch64), and vsnprintf takes it the same way.
_FORMATS_VA_LIST = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "aarch64")


@dataclass
class Messages:
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _pillow_libtiff() -> list[str]:
    """Paths of the libtiff that Pillow's extension has loaded."""
    from PIL import Image  # noqa: F401  (loads PIL._imaging, and its libtiff with it)

    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps") as maps:
                return sorted({line.split()[-1] for line in maps if "/libtiff" in line})
        except OSError:
            return []
    if sys.platform == "darwin":
        import PIL

        return [str(p) for p in sorted((Path(PIL.__file__).parent / ".dylibs").glob("libtiff*.dylib"))]
    return []


_vsnprintf: list[object] = []  # libc's, once libtiff's handlers are installed


def _text(module: bytes | None, fmt: bytes | None, args: int | None) -> str:
    text = fmt or b""
    if _vsnprintf and fmt and args:
        buffer = ctypes.create_string_buffer(1024)
        _vsnprintf[0](buffer, len(buffer), fmt, args)  # type: ignore[operator]
        text = buffer.value
    prefix = f"{module.decode('utf-8', 'replace')}: " if module else ""
    return prefix + text.decode("utf-8", "replace").strip()


def _make_handler(kind: str) -> object:
    def handler(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        try:
            messages = getattr(_local, "messages", None)
            if messages is not None:
                getattr(messages, kind).append(_text(module, fmt, args))
        except Exception:  # an exception here would be printed by ctypes, on stderr
            pass

    return _Handler(handler)


def _install() -> None:
    with _lock:
        if _installed:
            return
        _installed.append(None)  # tried once, found or not
        if _FORMATS_VA_LIST:
            vsnprintf = ctypes.CDLL(None).vsnprintf
            vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
            _vsnprintf.append(vsnprintf)
        for path in _pillow_libtiff():
            try:
                library = ctypes.CDLL(path)
                warning, error = _make_handler("warnings"), _make_handler("errors")
                library.TIFFSetWarningHandler.argtypes = [_Handler]
                library.TIFFSetErrorHandler.argtypes = [_Handler]
                library.TIFFSetWarningHandler(warning)
                library.TIFFSetErrorHandler(error)
                _installed.extend([library, warning, error])
            except (OSError, AttributeError):
                continue


@contextmanager
def captured() -> Iterator[Messages]:
    """libtiff's messages from this thread while the block runs."""
    _install()
    outer = getattr(_local, "messages", None)
    messages = Messages()
    _local.messages = messages
    try:
        yield messages
    finally:
        _local.messages = outer
