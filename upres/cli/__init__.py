"""The `upres` command line, the only package that imports typer or rich.

`application` builds the typer app (``upres.cli.app``, built on first use) and holds the entry
point (``main``); `options` is what the commands share; `console` is the terminal side of a
batch; `commands/` has one module per command group.
"""

from __future__ import annotations

from typing import Any

from upres.cli.application import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # `from upres.cli import app`: the whole CLI, built on first use (the tests drive it).
    if name == "app":
        from upres.cli import application

        return application.__getattr__("app")
    raise AttributeError(f"module 'upres.cli' has no attribute {name!r}")
