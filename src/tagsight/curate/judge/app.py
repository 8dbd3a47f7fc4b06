"""The pairwise-preference web app (FastAPI): one page, a JSON API, every vote appended to the study."""

from __future__ import annotations

from importlib import resources
from typing import Any

from tagsight.curate.judge.queue import VoteQueue


def create_judge_app(queue: VoteQueue) -> Any:
    from fastapi import Body, FastAPI, HTTPException, Query
    from fastapi.responses import HTMLResponse, Response

    app = FastAPI(title="tagsight judge", description="Blind pairwise preference between generated images")
    page = resources.files("tagsight.curate.judge").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/next")
    def next_items(rater: str = Query(..., min_length=1), n: int = Query(8, ge=1, le=64)) -> dict[str, Any]:
        try:
            return queue.next_items(rater.strip(), n)
        except ValueError as exc:
            raise HTTPException(400, detail={"reason": "bad_request", "message": str(exc)}) from exc

    @app.get("/api/image/{image_id}")
    def image(image_id: str) -> Response:
        try:
            return Response(queue.image(image_id), media_type="image/png", headers={"Cache-Control": "no-store"})
        except KeyError:
            raise HTTPException(404, detail={"reason": "unknown_image", "message": "no such image"}) from None

    @app.post("/api/vote")
    def vote(body: dict = Body(...)) -> dict[str, Any]:
        try:
            queue.record(body)
        except ValueError as exc:
            raise HTTPException(400, detail={"reason": "invalid_vote", "message": str(exc)}) from exc
        return {"ok": True}

    return app
