"""The `upres` command line. Heavy imports stay inside commands: `upres run` never imports torch."""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any


def _interrupted() -> SystemExit:
    """Ctrl-C: one line and exit code 130 (128 + SIGINT, as shells report it), no traceback."""
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone with its terminal
        pass
    return SystemExit(130)


try:  # the heaviest part of start-up: the likeliest moment for a Ctrl-C to land
    import typer
except KeyboardInterrupt:
    raise _interrupted() from None

HELP = "Reproducible, tiled super-resolution for archival photos."

# Commands are registered on an app built per invocation: typer evaluates every registered
# command's signature when it starts, and `upres run` should not pay for the other eleven. Each
# is (module, attribute), imported only when that command is built; the order is `--help`'s.
_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("upres.cli.commands.models", "train"),
    "export": ("upres.cli.commands.models", "export"),
    "inspect": ("upres.cli.commands.models", "inspect"),
    "eval": ("upres.cli.commands.models", "evaluate"),
    "run": ("upres.cli.commands.run", "run"),
    "plan": ("upres.cli.commands.run", "plan"),
    "calibrate": ("upres.cli.commands.calibrate", "calibrate_command"),
    "bench": ("upres.cli.commands.bench", "bench_command"),
    "build": ("upres.cli.commands.build", "build_command"),
    "clean": ("upres.cli.commands.clean", "clean_command"),
    "studio": ("upres.cli.commands.studio", "studio_command"),
}
_APPS = {"triton": ("upres.cli.commands.triton", "triton_app")}


def _load(entry: tuple[str, str]) -> Any:
    module, attribute = entry
    return getattr(importlib.import_module(module), attribute)


def build_app(only: str | None = None) -> typer.Typer:
    """The CLI with every command, or with ``only`` that one (same options, same help)."""
    cli = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)

    @cli.callback()
    def root() -> None:  # keeps the commands subcommands when only one is registered
        pass

    root.__doc__ = HELP
    for name, entry in _COMMANDS.items():
        if only in (None, name):
            cli.command(name)(_load(entry))
    for name, entry in _APPS.items():
        if only in (None, name):
            cli.add_typer(_load(entry), name=name)
    return cli


_APP: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    # `from upres.cli import app`: the whole CLI, built on first use (the tests drive it).
    global _APP
    if name == "app":
        if _APP is None:
            _APP = build_app()
        return _APP
    raise AttributeError(f"module 'upres.cli.application' has no attribute {name!r}")


_SIGINT_SEEN = False


def _on_sigint(signum: int, frame: object) -> None:
    # Python's own behaviour, remembered: a C extension interrupted while it initialises turns
    # the KeyboardInterrupt into an ImportError ("initialization failed"), which is no less a
    # Ctrl-C. A batch replaces this handler with its StopFlag while it runs.
    global _SIGINT_SEEN
    _SIGINT_SEEN = True
    raise KeyboardInterrupt


def main() -> None:
    """The `upres` entry point: with a command name first, only that command is built. A Ctrl-C
    anywhere ends it with the one line "interrupted" and exit code 130, never a traceback."""
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        first = sys.argv[1] if len(sys.argv) > 1 else None
        known = {*_COMMANDS, *_APPS}
        cli = build_app(first if first in known else None)
        sys.exit(cli(prog_name="upres"))
    except KeyboardInterrupt:  # outside a command: while building the app (its imports)
        raise _interrupted() from None
    except SystemExit as exc:
        # 130: typer's silent exit for a KeyboardInterrupt inside a command.
        if exc.code == 130 or (_SIGINT_SEEN and exc.code not in (0, None)):
            raise _interrupted() from None
        raise
    except BaseException:
        if _SIGINT_SEEN:
            raise _interrupted() from None
        raise
