"""Every failure a client can cause, as a reason code with its HTTP status (one table, used by the docs too).

A ``ServeError`` is a ``tagsight.fsio.ReasonError`` with a status; ``error_body`` is the JSON every
error response carries: ``{"error": {"status": 413, "reason": "image_too_large", "message": "..."}}``.
"""

from __future__ import annotations

from typing import Any

from tagsight.fsio import ReasonError

REASONS: dict[str, tuple[int, str]] = {
    # the body
    "empty_body": (400, "the request has no body"),
    "body_too_large": (413, "the request body exceeds the byte limit"),
    "unsupported_media_type": (415, "the Content-Type is not multipart/form-data, application/json or image/*"),
    "malformed_json": (400, "the JSON body does not parse"),
    "malformed_multipart": (400, "the multipart body does not parse"),
    "invalid_request": (422, "the request does not match the schema (missing or wrongly typed fields)"),
    "missing_image": (422, "no image field / part in the request"),
    "invalid_base64": (400, "the image field is not valid base64"),
    "invalid_options": (422, "options is not a JSON object of the app's settings"),
    "unknown_option": (422, "an option the app does not take"),
    "invalid_option": (422, "the app rejected an option value"),
    "app_rejected": (422, "the app refused this input with its own reason code (in the message)"),
    # the image
    "empty_image": (400, "the image has no bytes"),
    "image_too_large": (413, "the image file exceeds the byte limit"),
    "too_many_pixels": (413, "width x height (read from the header) exceeds the pixel limit"),
    "not_an_image": (415, "the bytes are not an image Pillow can identify"),
    "unsupported_image": (415, "an image format or mode that is not accepted"),
    "truncated_image": (400, "the image data ends early or is corrupt"),
    # routing, admin, load
    "not_found": (404, "no such endpoint"),
    "app_not_loaded": (404, "the bundle has no such app"),
    "unknown_app": (404, "/v1/analyze: an app named in apps= is not loaded"),
    "missing_apps": (422, "/v1/analyze: no apps= named"),
    "method_not_allowed": (405, "the endpoint does not take this HTTP method"),
    "admin_disabled": (403, "the server was started without an admin token"),
    "admin_token_missing": (401, "no Authorization: Bearer token"),
    "admin_token_invalid": (403, "the admin token is wrong"),
    "not_an_index": (409, "the app has no add/remove (only the similar-image index has)"),
    "reload_unavailable": (409, "the server was started without a loader to reload from"),
    "reload_failed": (409, "loading the new apps failed; the old apps keep serving"),
    "overloaded": (429, "the app's queue is full; retry after the Retry-After seconds"),
    "timeout": (408, "the answer took longer than the request timeout"),
    "shutting_down": (409, "the app is being replaced or the server is stopping; retry"),
    # not the client's fault
    "internal_error": (500, "a bug in the server or an app; logged, the server keeps serving"),
}


class ServeError(ReasonError):
    """A reason-coded failure of one request; ``status`` comes from ``REASONS``."""

    def __init__(self, reason: str, message: str | None = None, headers: dict[str, str] | None = None) -> None:
        if reason not in REASONS:
            raise KeyError(f"unknown serve reason {reason!r}")
        super().__init__(reason, message or REASONS[reason][1])
        self.status = REASONS[reason][0]
        self.headers = headers or {}


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "reason": reason, "message": message}}
