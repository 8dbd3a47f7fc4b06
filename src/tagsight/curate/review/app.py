"""The review web app (FastAPI): one page, a JSON API, every decision appended to the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tagsight.curate.review.agreement import agreement
from tagsight.curate.review.queue import ReviewQueue
from tagsight.curate.webpage import single_page_app

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_review_app(queue: ReviewQueue) -> FastAPI:
    from fastapi import Body, HTTPException, Query
    from fastapi.responses import Response

    app = single_page_app("tagsight review", "Two-stage human review of a curated set", "tagsight.curate.review")

    @app.get("/api/next")
    def next_items(stage: str = Query(...), reviewer: str = Query(..., min_length=1), n: int = Query(8, ge=1, le=64)) -> dict[str, Any]:
        try:
            return queue.next_items(stage, reviewer.strip(), n)
        except ValueError as exc:
            raise HTTPException(400, detail={"reason": "bad_request", "message": str(exc)}) from exc

    @app.get("/api/image/{key}")
    def image(key: str) -> Response:
        try:
            return Response(queue.image(key), media_type="image/jpeg", headers={"Cache-Control": "no-store"})
        except KeyError:
            raise HTTPException(404, detail={"reason": "unknown_or_forgotten", "message": key}) from None

    @app.post("/api/review")
    def review(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        try:
            queue.record(body)
        except ValueError as exc:
            raise HTTPException(400, detail={"reason": "invalid_review", "message": str(exc)}) from exc
        return {"ok": True}

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        rows = queue.rows()
        return {**agreement(rows), "queues": {s: len(queue.eligible(s)) for s in ("generalist", "specialist")}}

    return app
