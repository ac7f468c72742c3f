"""The routes of the HTTP face, each a few lines that check the caller and delegate.

Every store, auth, guard and limit call is the Flight server's own: the app is
built on a running FlightdeckServer and shares its authenticator, query and
live slots, health probe and live hub.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from flightdeck.views import describe
from flightdeck.views import query as queries
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..auth import check_role
from ..server import FlightdeckServer
from .auth import Caller, caller
from .body import json_body
from .call import HttpCall
from .dashboard import dashboard_routes
from .errors import HttpError, error_response
from .formats import encode, negotiate
from .live import live_events, subscription_command
from .pump import pumped

__all__ = ["create_app"]

Handler = Callable[[FlightdeckServer, Request, Caller], Awaitable[Response]]


def create_app(server: FlightdeckServer) -> Starlette:
    def guarded(what: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                who = await run_in_threadpool(caller, server.authenticator, request)
                check_role(who.identity, "reader", what)
                response = await handler(server, request, who)
            except Exception as exc:
                return error_response(exc, what)
            response.headers.update(who.headers())
            return response

        return endpoint

    return Starlette(
        routes=[
            Route("/healthz", _healthz),
            Route("/readyz", functools.partial(_readyz, server)),
            Route("/api/auth", functools.partial(_auth, server)),
            Route("/api/views", guarded("GET /api/views", _views)),
            Route("/api/query", guarded("POST /api/query", _query), methods=["POST"]),
            Route("/api/live/{view}", guarded("GET /api/live", _live)),
            *dashboard_routes(),
        ]
    )


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def _readyz(server: FlightdeckServer, request: Request) -> Response:
    """Ready when the store answers and, with NATS configured, NATS is connected:
    what ingest and live updates need. The health probe is the Flight action's."""
    report = await run_in_threadpool(server.health.report)
    parts = {"store": report["store"], "nats": report["nats"]}
    waiting = {
        name: state for name, state in parts.items() if state not in ("ok", "connected", "off")
    }
    body = {"status": "not ready" if waiting else "ready", **parts, "not_ready": sorted(waiting)}
    return JSONResponse(body, status_code=503 if waiting else 200)


async def _auth(server: FlightdeckServer, request: Request) -> Response:
    """How to sign in, before signing in: whether it is needed, and the identity
    provider the dashboard may send the browser to (all public: a browser client's
    id is no secret; PKCE, not a client secret, protects its code)."""
    settings = server.settings
    sso = None
    if settings.oidc_issuer and settings.oidc_client_id:
        sso = {
            "issuer": settings.oidc_issuer,
            "client_id": settings.oidc_client_id,
            "scope": settings.oidc_scope,
        }
    return JSONResponse({"required": settings.authenticated, "oidc": sso})


async def _views(server: FlightdeckServer, request: Request, who: Caller) -> Response:
    views = await run_in_threadpool(describe, server.store)
    listing = [
        {
            "name": view.name,
            "columns": [
                {"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in view.schema
            ],
        }
        for view in views
    ]
    return JSONResponse({"views": listing})


async def _query(server: FlightdeckServer, request: Request, who: Caller) -> Response:
    media = negotiate(request.headers.get("accept"))
    body = await json_body(request, server.settings.max_query_bytes + 1024)
    sql = body.get("sql")
    if not isinstance(sql, str):
        raise HttpError(400, 'the body needs "sql": the query text', "sql")
    call = HttpCall()

    def opened():
        # The guard, a query slot and the store's first answer, before the status is sent.
        query = queries.for_sql(server.store, sql, max_bytes=server.settings.max_query_bytes)
        return server.open_query(call, query)

    schema, batches = await run_in_threadpool(opened)
    chunks = encode(media, schema, batches)
    return StreamingResponse(pumped(chunks, call.cancel), media_type=media)


async def _live(server: FlightdeckServer, request: Request, who: Caller) -> Response:
    command = subscription_command(request.path_params["view"], request)
    events = await live_events(server, command)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies: don't hold
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)
