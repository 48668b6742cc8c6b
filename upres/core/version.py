"""The release number, here in the leaf layer so that any module may record it (sidecars,
reports, exported models) without importing the package root, which re-exports the API."""

__version__ = "0.1.0"
