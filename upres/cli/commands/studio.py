"""`upres studio FOLDER`: serve the review workspace on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def studio_command(
    folder: Annotated[Path, typer.Argument(help="folder of scans to review")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="where accepted images, their "
                                                "masks and sidecars go, and the progress is kept "
                                                "(default: FOLDER/cleaned)")] = None,
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8765,
    host: Annotated[str, typer.Option("--host", help="address to listen on; anything but a "
                                      "loopback address lets other machines in")] = "127.0.0.1",
    threads: Annotated[int, typer.Option("--threads", help="inference threads (0 = all cores)")] = 0,
) -> None:
    """Open a folder in a local web workspace: detect, edit the mask, preview the fill and the
    upscale, accept (writes what `upres clean --mask SAVED --then-upscale` writes)."""
    # Imported here: `upres run` must not pay for a web stack at start-up.
    from rich.console import Console

    err = Console(stderr=True)
    try:
        import uvicorn

        from upres.studio.engines import Engines
        from upres.studio.security import allowed_hosts, is_loopback
        from upres.studio.server import create_app
    except ImportError as exc:
        err.print(f"[red]error:[/red] upres studio needs the studio extra (pip install "
                  f"'upres[studio]'): {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if not folder.is_dir():
        err.print(f"[red]error:[/red] {folder}: not a folder", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    if not 0 < port < 65536:
        err.print(f"[red]error:[/red] --port must be 1..65535, got {port}", highlight=False)
        raise typer.Exit(2)
    if not is_loopback(host):
        # Said loudly: the studio has no login, and it writes into the output folder on request.
        err.print(f"[bold red]WARNING:[/bold red] listening on {host}, not a loopback address: any "
                  "machine that can reach this one can view these images and write into the "
                  "output folder. Use --host 127.0.0.1 unless that is what you want.",
                  highlight=False, soft_wrap=True)
    app = create_app(folder, output, allowed_hosts(host, port), Engines(threads=threads))
    shown = f"[{host}]" if ":" in host else host
    err.print(f"upres studio: http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/ "
              "(Ctrl-C stops it)", highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
