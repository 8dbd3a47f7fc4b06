"""Request and response models of the HTTP API (they make ``/docs`` and ``/openapi.json`` useful)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tagsight.serve.errors import REASONS


class ImageJSON(BaseModel):
    """An image as JSON: the image file (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF) in base64."""

    image: str = Field(..., description="base64 of the image file (standard or URL-safe; a data: URL prefix is allowed)")
    options: dict[str, Any] = Field(default_factory=dict, description="per-request settings of the app, e.g. {\"k\": 5}")


class ImageForm(BaseModel):
    """An image as a multipart/form-data upload."""

    image: bytes = Field(..., json_schema_extra={"format": "binary"}, description="the image file")
    options: str | None = Field(None, description="optional JSON object of per-request settings")


class Prediction(BaseModel):
    """One app's answer for one image."""

    app: str = Field(..., examples=["hashtags"])
    result: dict[str, Any] = Field(..., description="the app's JSON answer (see the app's docs)",
                                   examples=[{"hashtags": [{"tag": "dog", "score": 0.91}]}])
    batch_size: int = Field(..., description="how many requests shared the predict call that answered this one")


class AnalyzeJSON(BaseModel):
    """``/v1/analyze`` as JSON: the image, the apps and each app's options."""

    image: str = Field(..., description="base64 of the image file")
    apps: str | list[str] | None = Field(None, description="the apps (or the apps= query parameter)",
                                         examples=["hashtags,alt-text"])
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per app, e.g. "
                                               "{\"hashtags\": {\"k\": 3}}")


class AnalyzeForm(BaseModel):
    """``/v1/analyze`` as a multipart/form-data upload."""

    image: bytes = Field(..., json_schema_extra={"format": "binary"}, description="the image file")
    apps: str | None = Field(None, description="comma-separated apps (or the apps= query parameter)")
    options: str | None = Field(None, description="optional JSON object: per app, its settings")


class Analysis(BaseModel):
    """Several apps' answers for one image, from one backbone pass."""

    apps: list[str] = Field(..., examples=[["hashtags", "alt-text"]])
    results: dict[str, dict[str, Any]] = Field(..., description="app -> its JSON answer, as /v1/<app> gives it")
    batch_size: int = Field(..., description="how many requests shared the backbone pass that answered this one")


class ErrorDetail(BaseModel):
    status: int = Field(..., examples=[413])
    reason: str = Field(..., description="stable code: " + ", ".join(REASONS), examples=["too_many_pixels"])
    message: str = Field(..., examples=["image is 20000x20000 = 400000000 pixels (max 25000000)"])


class ErrorResponse(BaseModel):
    """Every error answer (4xx, and 500 for a bug) has this body."""

    error: ErrorDetail


class Health(BaseModel):
    status: str = Field(..., examples=["ok"])
    apps: dict[str, dict[str, Any]] = Field(..., description="describe() of every app being served")
    batching: dict[str, float] = Field(..., description="max_batch, max_wait_ms, max_queue")
    limits: dict[str, int] = Field(..., description="max_bytes, max_pixels, max_side, max_body")
    queue_depth: dict[str, int]
    uptime_s: float
    reloads: int


class ReloadResult(BaseModel):
    apps: list[str]
    seconds: float
    reloads: int


class IndexPost(BaseModel):
    """A post added to the similar-image index."""

    image: str = Field(..., description="base64 of the post's image file")
    post_key: str = Field(..., min_length=1, description="source/post_id", examples=["pixelfed/12345"])
    author_id: str = Field(..., min_length=1, examples=["ann"])
    hashtags: list[str] = Field(default_factory=list, examples=[["dog", "beach"]])


class IndexAddResult(BaseModel):
    app: str
    added: int = Field(..., description="posts added (0 when the app refused them, e.g. a forgotten post)")


class IndexRemove(BaseModel):
    post_keys: list[str] = Field(..., min_length=1, description="source/post_id of each post to remove")


class IndexRemoveResult(BaseModel):
    app: str
    removed: int
