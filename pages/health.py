"""`GET /healthz`: liveness with version and media back end (no secrets)."""

from __future__ import annotations

from importlib import metadata

from nicegui import app


def version() -> str:
    """The installed package version."""
    try:
        return metadata.version('orange-telehealth')
    except metadata.PackageNotFoundError:  # running from a checkout that was not installed
        return '0+unknown'


def register(media_backend: str) -> None:
    """Add the route to the app."""

    @app.get('/healthz')
    def healthz() -> dict[str, str]:
        return {'status': 'ok', 'version': version(), 'media': media_backend}
