"""The live analytics dashboard (seed 003 recipe 7) at `/dashboard`, served from package files.

```python
app = create_app(project, settings)
mount_dashboard(app)  # GET /dashboard, GET /dashboard/static/...
```

The page itself needs no credentials: it asks for an API key, a JWT or (in insecure-local
mode) an organization id, keeps it in `sessionStorage`, and calls the `/api/v1` routes and
the `/api/v1/ws/analytics` WebSocket with it. Its charting library (Chart.js) is vendored
under `static/vendor/` and every file is read with `importlib.resources`: the dashboard
works offline, where seed 003's page loaded Chart.js from a CDN.

The HTML carries a Content-Security-Policy that lets the page load and connect to its own
origin only, so a run's text shown on the page can never pull in a script or leak data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Final

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.exceptions import HTTPException

from onionskin.core.errors import ConfigError

DASHBOARD_PATH: Final = "/dashboard"
"""Where the page is served; its files are under `/dashboard/static/`."""
MEDIA_TYPES: Final = MappingProxyType(
    {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".md": "text/plain; charset=utf-8",
    }
)
"""The file kinds served, by suffix; any other file in the package folder is not served."""
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        # 'self' covers ws:// and wss:// to the page's own host (CSP level 3).
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""The page's policy: its own origin only, no inline script, no framing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticFile:
    """One file of the dashboard, read once from the package."""

    body: bytes
    """The file's bytes."""
    media_type: str
    """Its `Content-Type`."""
    etag: str
    """A strong validator (quoted), so a browser revalidates with `If-None-Match`."""


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        else:
            yield f"{prefix}{entry.name}", entry


def load_static() -> dict[str, StaticFile]:
    """Every servable file of the dashboard, by its path under `static/` (`vendor/x.js`).

    Raises:
        ConfigError: the package was installed without its static files.
    """
    folder = files(__name__) / "static"
    found: dict[str, StaticFile] = {}
    if folder.is_dir():
        for name, entry in _walk(folder):
            suffix = name[name.rfind(".") :] if "." in name else ""
            media_type = MEDIA_TYPES.get(suffix)
            if media_type is None:
                continue
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found[name] = StaticFile(body=body, media_type=media_type, etag=etag)
    if "index.html" not in found:
        raise ConfigError(
            "the dashboard's files are missing from the installed onionskin package "
            "(onionskin/server/dashboard/static/index.html): reinstall onionskin"
        )
    return found


def _respond(request: Request, file: StaticFile, headers: dict[str, str]) -> Response:
    headers = {
        "ETag": file.etag,
        # Revalidate every time: an upgraded package must not leave a stale app.js behind.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        **headers,
    }
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


def dashboard_router() -> APIRouter:
    """A router serving `/dashboard` and `/dashboard/static/{path}` from the package.

    The routes stay out of the OpenAPI document: they are a page, not the API.

    Raises:
        ConfigError: the package was installed without its static files.
    """
    static = load_static()
    page_headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    router = APIRouter(include_in_schema=False)

    @router.get(DASHBOARD_PATH)
    async def dashboard_page(request: Request) -> Response:
        return _respond(request, static["index.html"], page_headers)

    @router.get(DASHBOARD_PATH + "/static/{path:path}")
    async def dashboard_static(request: Request, path: str) -> Response:
        # Looked up in the files read at start-up, never joined to a folder: `..` and
        # absolute paths simply are not keys.
        found = static.get(path)
        if found is None:
            raise HTTPException(404, f"the dashboard has no file {path!r}")
        return _respond(request, found, {})

    return router


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard from `app`: the page at `/dashboard`, its files below it.

    Raises:
        ConfigError: the package was installed without its static files.
    """
    app.include_router(dashboard_router())


__all__ = ["DASHBOARD_PATH", "StaticFile", "dashboard_router", "load_static", "mount_dashboard"]
