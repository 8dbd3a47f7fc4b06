"""The shell of a one-page web tool (review, judge): a FastAPI app serving one HTML file from package data."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # FastAPI is imported when an app is built, never on import
    from fastapi import FastAPI


def single_page_app(title: str, description: str, package: str, page: str = "page.html") -> FastAPI:
    """A FastAPI app whose ``/`` is ``package``'s ``page`` (read once); callers add their ``/api`` routes."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    app = FastAPI(title=title, description=description)
    html = resources.files(package).joinpath(page).read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return html

    return app
