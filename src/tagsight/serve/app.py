"""``create_app(apps, settings)``: the FastAPI application of ``tagsight serve``.

Routes: ``POST /v1/analyze?apps=a,b[&a.option=value...]`` (several apps for one image, the backbone run once,
``tagsight.serve.analyze``), ``POST /v1/<app>[?option=value...]`` for every app (hashtags, alt-text, categorize, moderate, similar and any
other app given), ``GET /healthz``, ``GET /metrics`` (Prometheus text), ``/docs`` (served offline,
``tagsight.serve.docs``) and ``/openapi.json``, and the token-protected ``/admin/...`` routes (``tagsight.serve.admin``).
Every failure a client can cause is answered with its status from ``tagsight.serve.errors.REASONS``
and ``{"error": {"status", "reason", "message"}}``; an unexpected exception is a 500
``internal_error``, logged, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tagsight.apps.base import App
from tagsight.serve import schemas
from tagsight.serve.analyze import parse_request
from tagsight.serve.decode import (ImageInput, check_declared_length, content_type, decode_image, prepare_input,
                                   query_value, read_limited)
from tagsight.serve.docs import add_docs_routes
from tagsight.serve.errors import REASONS, ServeError, error_body
from tagsight.serve.host import AppHost
from tagsight.serve.metrics import Metrics
from tagsight.serve.settings import ServeSettings

log = logging.getLogger(__name__)

STANDARD_APPS = ("hashtags", "alt-text", "categorize", "moderate", "similar")
Loader = Callable[[], Mapping[str, App]]
"""Builds a fresh ``name -> App`` mapping (from the bundle); called by ``POST /admin/reload``."""

IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": schemas.ImageForm.model_json_schema()},
    "application/json": {"schema": schemas.ImageJSON.model_json_schema()},
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}
ANALYZE_BODY = {"parameters": [{"name": "apps", "in": "query", "required": False, "schema": {"type": "string"},
                                 "description": "comma-separated apps, e.g. hashtags,alt-text (or the 'apps' "
                                                "form/JSON field); options as APP.OPTION=value"}],
                "requestBody": {"required": True, "content": {
                    "multipart/form-data": {"schema": schemas.AnalyzeForm.model_json_schema()},
                    "application/json": {"schema": schemas.AnalyzeJSON.model_json_schema()},
                    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {status: {"model": schemas.ErrorResponse, "description": ", ".join(
    r for r, (s, _) in REASONS.items() if s == status)} for status in sorted({s for s, _ in REASONS.values()})}


def create_app(apps: Mapping[str, App], settings: ServeSettings | None = None,
               loader: Loader | None = None) -> FastAPI:
    """The ASGI app serving ``apps`` (name -> App); ``loader`` enables ``POST /admin/reload``."""
    settings = settings or ServeSettings()
    state = ServerState(settings, apps, loader)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.host.start(state.initial_apps)
        state.metrics.apps_loaded.set(len(state.host.batchers))
        yield
        await state.host.close()

    api = FastAPI(title="tagsight", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Hashtags, alt text, categories, moderation and similar images for one photo. "
                              "Send the image as multipart/form-data (field `image`), JSON `{\"image\": BASE64}` "
                              "or a raw `image/*` body. Errors carry a stable `reason` code.")
    api.state.tagsight = state
    _install_error_handlers(api, state.metrics)
    api.add_middleware(MetricsMiddleware, metrics=state.metrics)
    _add_analyze_route(api, state)
    for name in dict.fromkeys([*STANDARD_APPS, *apps]):
        _add_predict_route(api, state, name)
    _add_predict_route(api, state, None)  # any other app a reload brings in
    _add_health_routes(api, state)
    add_docs_routes(api)
    from tagsight.serve.admin import add_admin_routes

    add_admin_routes(api, state)
    return api


class ServerState:
    """What the routes share: settings, the app host, metrics, the reload loader and a decode limiter."""

    def __init__(self, settings: ServeSettings, apps: Mapping[str, App], loader: Loader | None) -> None:
        self.settings, self.loader = settings, loader
        self.initial_apps = dict(apps)
        self.host = AppHost(settings, lambda *batch: self.metrics.observe_batch(*batch))
        self.metrics = Metrics(self.host.depths)
        self.decode_limiter = anyio.CapacityLimiter(settings.decode_threads)
        self.reload_lock = asyncio.Lock()
        self.started = time.monotonic()

    async def read_image(self, request: Request) -> tuple[Image.Image, dict[str, Any]]:
        """The decoded image and options of a request, within the byte and pixel limits."""
        image, parsed = await self.read_input(request)
        return image, parsed.options

    async def read_input(self, request: Request) -> tuple[Image.Image, ImageInput]:
        """The decoded image and the parsed body (options, apps) of a request, within the byte and pixel limits."""
        kind, params = content_type(request.headers)
        check_declared_length(request.headers, self.settings.max_body)
        try:
            body = await read_limited(request.stream(), self.settings.max_body)
        except ClientDisconnect:
            raise ServeError("empty_body", "the client went away before sending the whole body") from None
        return await anyio.to_thread.run_sync(prepare_input, kind, params, body, self.settings,
                                              limiter=self.decode_limiter)

    async def decode(self, data: bytes) -> Image.Image:
        return await anyio.to_thread.run_sync(decode_image, data, self.settings, limiter=self.decode_limiter)


def _add_predict_route(api: FastAPI, state: ServerState, fixed: str | None) -> None:
    """``POST /v1/<fixed>`` (documented), or with ``fixed`` None the catch-all ``POST /v1/{app}``."""

    async def predict(request: Request) -> JSONResponse:
        name = fixed or request.path_params["app"]
        state.host.get(name)  # 404 before reading a body for nothing
        image, options = await state.read_image(request)
        options = with_query_options(options, request.query_params.multi_items())
        try:
            answer = await asyncio.wait_for(state.host.get(name).submit(image, options),
                                            state.settings.request_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            raise ServeError("timeout", f"no answer within {state.settings.request_timeout_s} s") from None
        return JSONResponse({"app": name, "result": answer.result, "batch_size": answer.batch_size})

    if fixed is None:
        api.add_api_route("/v1/{app}", predict, methods=["POST"], name="predict-any", include_in_schema=False)
        return
    api.add_api_route(f"/v1/{fixed}", predict, methods=["POST"], name=f"predict-{fixed}",
                      summary=f"{fixed} for one image", response_model=schemas.Prediction,
                      responses=ERROR_RESPONSES, openapi_extra=IMAGE_BODY, tags=["apps"])


def _add_analyze_route(api: FastAPI, state: ServerState) -> None:
    """``POST /v1/analyze``: the apps a request names, answered from one backbone pass, as ``{app: answer}``."""

    async def analyze(request: Request) -> JSONResponse:
        query = request.query_params.multi_items()
        image, parsed = await state.read_input(request)
        asked = parse_request(query, parsed.apps, parsed.options, state.host.batchers)   # checked before queueing
        try:
            answer = await asyncio.wait_for(state.host.get_analyzer().submit(image, asked.as_options()),
                                            state.settings.request_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            raise ServeError("timeout", f"no answer within {state.settings.request_timeout_s} s") from None
        return JSONResponse({"apps": list(asked.apps), "results": answer.result, "batch_size": answer.batch_size})

    api.add_api_route("/v1/analyze", analyze, methods=["POST"], name="analyze",
                      summary="several apps for one image (apps=hashtags,alt-text); the backbone runs once",
                      response_model=schemas.Analysis, responses=ERROR_RESPONSES, openapi_extra=ANALYZE_BODY,
                      tags=["apps"])


def with_query_options(options: dict[str, Any], query: list[tuple[str, str]]) -> dict[str, Any]:
    """The body's options plus the query string's: ``?k=2`` is ``{"k": 2}`` (a value that parses as a JSON
    number, boolean or null is that; any other value is the text).

    A key given twice (in the query, or in both the query and the body) is refused (``invalid_options``);
    a key the app does not take is refused by the app's check (``unknown_option``).
    """
    out = dict(options)
    seen: set[str] = set()
    for key, value in query:
        if key in seen or key in options:
            raise ServeError("invalid_options", f"option {key!r} is given twice (query string and/or body)")
        seen.add(key)
        out[key] = query_value(value)
    return out


def _add_health_routes(api: FastAPI, state: ServerState) -> None:
    s = state.settings

    @api.get("/healthz", response_model=schemas.Health, tags=["ops"], summary="liveness and what is loaded")
    async def healthz() -> JSONResponse:
        return JSONResponse({
            "status": "ok", "apps": state.host.describe(), "queue_depth": state.host.depths(),
            "batching": {"max_batch": s.max_batch, "max_wait_ms": s.max_wait_ms, "max_queue": s.max_queue},
            "limits": {"max_bytes": s.max_bytes, "max_pixels": s.max_pixels, "max_side": s.max_side,
                       "max_body": s.max_body},
            "uptime_s": round(time.monotonic() - state.started, 3), "reloads": state.host.reloads})

    @api.get("/metrics", tags=["ops"], summary="Prometheus metrics (text exposition format)",
             response_class=Response)
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)


# --------------------------------------------------------------------------------------- errors


def _error_response(metrics: Metrics, status: int, reason: str, message: str,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    metrics.rejections.labels(reason).inc()
    return JSONResponse(error_body(status, reason, message), status_code=status, headers=headers)


_HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def _install_error_handlers(api: FastAPI, metrics: Metrics) -> None:
    @api.exception_handler(ServeError)
    async def serve_error(_: Request, exc: ServeError) -> JSONResponse:
        return _error_response(metrics, exc.status, exc.reason, str(exc), exc.headers)

    @api.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(metrics, 422, "invalid_request", _validation_message(exc.errors()))

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = _HTTP_REASONS.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error")
        return _error_response(metrics, exc.status_code, reason, str(exc.detail), getattr(exc, "headers", None))

    @api.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(metrics, 500, "internal_error", f"{type(exc).__name__} (logged on the server)")


def _validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5]]
    return "; ".join(parts) or "the request does not match the schema"


# --------------------------------------------------------------------------------------- metrics


class MetricsMiddleware:
    """Counts every answered request by route template and status, and observes its latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(endpoint, status[0], time.perf_counter() - start)
