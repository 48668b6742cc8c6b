"""upres: reproducible, tiled super-resolution for archival photos."""

__version__ = "0.1.0"
