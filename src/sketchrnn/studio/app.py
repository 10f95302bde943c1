"""The studio's ASGI application (Starlette): one page, its two static files, a JSON API.

Routes::

    GET  /                     the page (static/index.html)
    GET  /static/studio.js     page script      GET /static/studio.css   page style
    GET  /openapi.json         OpenAPI 3.1 description of the API
    GET  /api/models           {"models": [{"name", "conditional", ...}, ...]}
    GET  /api/models/{name}    one model, loaded (adds "extent": data units the canvas spans)
    POST /api/complete         {"model", "strokes", "n", "temperature", ...} -> {"completions": [...]}
    POST /api/reconstruct      -> {"reconstructions": [...]}     (conditional models)
    POST /api/interpolate      -> {"t": [...], "sketches": [...]} (conditional models)
    POST /api/sample           -> {"sketches": [...]}

Safety for a server on the user's machine: only the Host names given are accepted (DNS
rebinding), POST bodies must be ``application/json`` (so a foreign page cannot post
without a CORS preflight, which is never granted), bodies are read up to a size limit,
model names are looked up in a fixed registry, and errors are JSON ``{"error": "..."}``
with a 4xx status. Model calls run in the thread pool, one request per model at a time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .openapi import openapi_document
from .registry import ModelRegistry
from .service import StudioService
from .validation import Limits, RequestError, parse_json_body

__all__ = ["create_app", "STATIC_DIR", "LOOPBACK_HOSTS"]

log = logging.getLogger("sketchrnn.studio")

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_STATIC = {"studio.js": "text/javascript; charset=utf-8", "studio.css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                 b"script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _SecurityHeaders:
    """Pure ASGI middleware adding a strict CSP and friends to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"cache-control": "no-store"})


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise RequestError(400, "Content-Length header is not a number") from None
        if n > limit:
            raise RequestError(413, f"request body has {n} bytes, more than the limit of {limit}; "
                                    "send a shorter drawing")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is larger than the limit of {limit} bytes; send a shorter drawing")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(registry: ModelRegistry, limits: Limits | None = None,
               allowed_hosts: Sequence[str] | None = None,
               decode_fn: Callable | None = None) -> Starlette:
    """Build the studio app over ``registry``.

    ``allowed_hosts``: accepted ``Host`` names (default: 127.0.0.1 and localhost; ``["*"]``
    accepts any). ``decode_fn`` replaces :func:`sketchrnn.api.decode` (same signature),
    e.g. with a faster sampler."""
    limits = limits or Limits()
    service = StudioService(registry, limits, decode_fn=decode_fn)
    hosts = list(allowed_hosts) if allowed_hosts else list(LOOPBACK_HOSTS)
    page = (STATIC_DIR / "index.html").read_bytes()
    static = {name: (STATIC_DIR / name).read_bytes() for name in _STATIC}
    spec = openapi_document(limits)

    def post(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise RequestError(415, f"Content-Type must be application/json, got {ctype or 'none'!r}")
                body = await _read_body(request, limits.max_body_bytes)
                obj = parse_json_body(body, limits)
                result = await run_in_threadpool(fn, obj)
                return JSONResponse(result, headers={"cache-control": "no-store"})
            except RequestError as e:
                return _error(e.status, e.message)
            except Exception:  # noqa: BLE001 - never a traceback to the client
                log.exception("studio: %s failed", request.url.path)
                return _error(500, f"internal error in {request.url.path}; see the server log")

        return endpoint

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:  # fixed whitelist: no path is ever built from the request
            return _error(404, f"no static file {name[:40]!r}")
        return Response(static[name], media_type=_STATIC[name], headers={"cache-control": "no-cache"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def models(request: Request) -> Response:
        return JSONResponse(service.models(), headers={"cache-control": "no-store"})

    async def model_info(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(service.model_info, request.path_params["name"]),
                                headers={"cache-control": "no-store"})
        except RequestError as e:
            return _error(e.status, e.message)
        except Exception:  # noqa: BLE001
            log.exception("studio: model info failed")
            return _error(500, "internal error while loading the model; see the server log")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "error")
        msg = {404: f"no such path {request.url.path[:80]!r}; the API is under /api (see /openapi.json)",
               405: f"method {request.method} is not allowed on {request.url.path[:80]}"}.get(status, str(detail))
        return _error(status, msg)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/static/{name}", static_file, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/api/models", models, methods=["GET"]),
        Route("/api/models/{name}", model_info, methods=["GET"]),
        Route("/api/complete", post(service.complete), methods=["POST"]),
        Route("/api/reconstruct", post(service.reconstruct), methods=["POST"]),
        Route("/api/interpolate", post(service.interpolate), methods=["POST"]),
        Route("/api/sample", post(service.sample), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                    middleware=[Middleware(_SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])
    app.state.service = service
    app.state.registry = registry
    app.state.limits = limits
    return app
