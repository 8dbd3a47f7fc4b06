"""The pairwise-preference web app (FastAPI): one page, a JSON API, every vote appended to the study."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tagsight.curate.judge.queue import VoteQueue
from tagsight.curate.webpage import single_page_app

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_judge_app(queue: VoteQueue) -> FastAPI:
    from fastapi import Body, HTTPException, Query
    from fastapi.responses import Response

    app = single_page_app("tagsight judge", "Blind pairwise preference between generated images",
                          "tagsight.curate.judge")

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
    def vote(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        try:
            queue.record(body)
        except ValueError as exc:
            raise HTTPException(400, detail={"reason": "invalid_vote", "message": str(exc)}) from exc
        return {"ok": True}

    return app
