"""One module per command group; upres.cli.application imports only the one invoked."""
