"""Admin routes behind a bearer token: reload the apps, add posts to or remove them from an index.

``Authorization: Bearer TOKEN`` with the server's token (``--admin-token-file``): no header is 401
``admin_token_missing``, a wrong token 403 ``admin_token_invalid``, a server started without a
token answers every admin route with 403 ``admin_disabled``. Tokens are compared in constant time.

An index app (the similar-image app) has ``add(images, posts) -> int`` (``posts``: dicts with
``post_key``, ``author_id``, ``hashtags``; the app refuses posts its tombstones forget) and
``remove(post_keys) -> int``; both run in the app's worker thread, never during a ``predict``.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from tagsight.serve import schemas
from tagsight.serve.decode import check_declared_length, decode_base64, read_limited
from tagsight.serve.errors import REASONS, ServeError

if TYPE_CHECKING:
    from tagsight.serve.batching import MicroBatcher
    from tagsight.serve.app import ServerState

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {s: {"model": schemas.ErrorResponse} for s in (401, 403, 404, 409, 413, 422)}


@runtime_checkable
class IndexApp(Protocol):
    """What an app needs for ``/admin/<app>/add`` and ``/admin/<app>/remove``."""

    def add(self, images: Any, posts: Any) -> int: ...

    def remove(self, post_keys: Any) -> int: ...


def check_token(request: Request) -> None:
    """The bearer-token check of every admin route."""
    expected = request.app.state.tagsight.settings.admin_token
    if expected is None:
        raise ServeError("admin_disabled", "this server was started without --admin-token-file")
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ServeError("admin_token_missing", "send Authorization: Bearer <token>",
                         headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise ServeError("admin_token_invalid", "the admin token is wrong")


async def read_model(request: Request, model: type[M], limit: int) -> M:
    """A JSON body validated as ``model``: malformed JSON and schema errors are 400 / 422 with their reason."""
    check_declared_length(request.headers, limit)
    body = await read_limited(request.stream(), limit)
    if not body:
        raise ServeError("empty_body", f"send a JSON {model.__name__} body")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            raise ServeError("malformed_json", f"the body is not valid JSON: {errors[0].get('msg')}") from None
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        raise ServeError("invalid_request", detail) from None


def add_admin_routes(api: FastAPI, state: ServerState) -> None:
    auth = [Depends(check_token)]

    @api.post("/admin/reload", dependencies=auth, response_model=schemas.ReloadResult, responses=ADMIN_RESPONSES,
              tags=["admin"], summary="load the apps again from the bundle and swap them in without dropping requests")
    async def reload() -> JSONResponse:
        return JSONResponse(await _reload(state))

    @api.post("/admin/{app}/add", **_index_route(schemas.IndexPost, schemas.IndexAddResult, "add a post to"))
    async def index_add(app: str, request: Request) -> JSONResponse:
        batcher, index = _index(state, app)
        post = await read_model(request, schemas.IndexPost, state.settings.max_body)
        image = await state.decode(_image_bytes(post.image, state.settings.max_bytes))
        meta = {"post_key": post.post_key, "author_id": post.author_id, "hashtags": list(post.hashtags)}
        added = await batcher.run_exclusive(lambda: index.add([image], [meta]))
        return JSONResponse({"app": app, "added": int(added)})

    @api.post("/admin/{app}/remove", **_index_route(schemas.IndexRemove, schemas.IndexRemoveResult,
                                                    "remove posts from"))
    async def index_remove(app: str, request: Request) -> JSONResponse:
        batcher, index = _index(state, app)
        body = await read_model(request, schemas.IndexRemove, state.settings.body_overhead * 16)
        removed = await batcher.run_exclusive(lambda: index.remove(list(body.post_keys)))
        return JSONResponse({"app": app, "removed": int(removed)})


def _index_route(body: type[BaseModel], result: type[BaseModel], verb: str) -> dict[str, Any]:
    """Route options of an index admin route: token, JSON body schema in the docs, answer and errors."""
    return {"dependencies": [Depends(check_token)], "response_model": result, "responses": ADMIN_RESPONSES,
            "tags": ["admin"], "summary": f"{verb} an index app (the similar-image app)",
            "openapi_extra": {"requestBody": {"required": True, "content": {
                "application/json": {"schema": body.model_json_schema()}}}}}


def _image_bytes(text: str, max_bytes: int) -> bytes:
    data = decode_base64(text)
    if not data:
        raise ServeError("empty_image")
    if len(data) > max_bytes:
        raise ServeError("image_too_large", f"the image has {len(data)} bytes (max {max_bytes})")
    return data


def _index(state: ServerState, name: str) -> tuple[MicroBatcher, IndexApp]:
    batcher = state.host.get(name)
    if not isinstance(batcher.app, IndexApp):
        raise ServeError("not_an_index", f"app {name!r} has no add/remove; {REASONS['not_an_index'][1]}")
    return batcher, batcher.app


async def _reload(state: ServerState) -> dict[str, Any]:
    """Build new apps with the loader (in a thread) and swap them in; on failure the old apps keep serving."""
    if state.loader is None:
        raise ServeError("reload_unavailable")
    async with state.reload_lock:
        start = time.perf_counter()
        try:
            apps = await anyio.to_thread.run_sync(state.loader)
            await state.host.swap(apps)
        except Exception as exc:
            state.metrics.reloads.labels("failed").inc()
            log.error("reload failed; the old apps keep serving", exc_info=exc)
            raise ServeError("reload_failed", f"{type(exc).__name__}: {exc}") from None
        state.metrics.reloads.labels("ok").inc()
        state.metrics.apps_loaded.set(len(state.host.batchers))
        return {"apps": sorted(state.host.batchers), "seconds": round(time.perf_counter() - start, 3),
                "reloads": state.host.reloads}
