"""``/docs`` that works offline: Swagger UI's scripts and styles served by the app itself.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN, so on a machine without internet it is
blank. Here the assets come from the ``swagger-ui-bundle`` package (Apache-2.0, Swagger UI 4.x)
and are served under ``/docs/assets/``; the page references nothing outside the server. ReDoc
(``/redoc``, CDN only) is not offered.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

ASSETS = "/docs/assets"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def swagger_assets() -> Path | None:
    """The folder holding Swagger UI's files, or None when ``swagger-ui-bundle`` is not installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(swagger_ui_path)
    return path if all((path / f).is_file() for f in FILES) else None


def add_docs_routes(api: FastAPI) -> None:
    """``GET /docs`` (Swagger UI over ``/openapi.json``) with every asset served locally."""
    assets = swagger_assets()
    if assets is None:
        log.warning("swagger-ui-bundle is not installed: /docs is off (/openapi.json still works); "
                    "pip install 'tagsight[serve]'")
        return
    api.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=api.openapi_url or "/openapi.json", title=f"{api.title} - API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
