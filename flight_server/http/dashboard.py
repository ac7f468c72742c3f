"""`GET /`: the live dashboard, static files from the package (no build step).

The page and its assets are public, like a login page: they hold no data. Every
number on it comes from `/api/live/...`, which checks the caller as Flight does;
with --auth-file the page asks for a login and sends the token it earns; with
--oidc-client-id it can sign in at the identity provider instead (static/sso.js).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "dashboard_routes"]

STATIC_DIR = Path(__file__).parent / "static"
# The page is small and changes with the package: revalidate rather than cache stale JS.
_NO_STALE = {"Cache-Control": "no-cache"}


async def _index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=_NO_STALE)


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_NO_STALE)
        return response


def dashboard_routes() -> list[Route | Mount]:
    return [
        Route("/", _index),
        Mount("/static", _Assets(directory=STATIC_DIR), name="static"),
    ]
