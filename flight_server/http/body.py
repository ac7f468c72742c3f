"""Request bodies, read within a bound: a client cannot make the server hold more."""

from __future__ import annotations

import json

from starlette.requests import Request

from .errors import HttpError

__all__ = ["json_body"]


async def json_body(request: Request, max_bytes: int) -> dict:
    """The request's JSON object; 413 past `max_bytes`, 400 when it is not an object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"the body is not JSON: {exc}", "json") from None
    if not isinstance(body, dict):
        raise HttpError(400, 'the body must be a JSON object such as {"sql": "SELECT …"}', "json")
    return body


def _too_large(max_bytes: int) -> HttpError:
    return HttpError(413, f"the body is over {max_bytes} bytes (--max-query-kb)", "body-size")
