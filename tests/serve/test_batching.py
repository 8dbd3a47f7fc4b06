"""Dynamic batching over real HTTP and on the batcher itself: batches form, stay apart by options, stay bounded."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from PIL import Image

from tagsight.serve.batching import MicroBatcher
from tagsight.serve.errors import ServeError


async def _burst(url: str, n: int, data: bytes, path: str = "/v1/hashtags", json_extra=None) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        if json_extra:
            import base64

            b64 = base64.b64encode(data).decode()
            return await asyncio.gather(*(c.post(path, json={"image": b64, **json_extra(i)}) for i in range(n)))
        return await asyncio.gather(*(c.post(path, content=data, headers={"content-type": "image/jpeg"})
                                      for _ in range(n)))


def test_concurrent_requests_share_predict_calls_and_batching_off_does_not(serve, kit):
    on = kit.ColourApp(per_call=0.03)
    off = kit.ColourApp(per_call=0.03)
    data = kit.image_bytes()
    answers = asyncio.run(_burst(serve({"hashtags": on}, max_batch=16, max_wait_ms=20).url, 48, data))
    assert all(r.status_code == 200 for r in answers)
    assert sum(on.calls) == 48 and len(on.calls) < 48 / 2 and max(on.calls) <= 16
    assert sorted({r.json()["batch_size"] for r in answers}) == sorted(set(on.calls))
    t0 = time.perf_counter()
    answers = asyncio.run(_burst(serve({"hashtags": off}, max_batch=1).url, 48, data))
    unbatched = time.perf_counter() - t0
    assert all(r.status_code == 200 and r.json()["batch_size"] == 1 for r in answers)
    assert off.calls == [1] * 48
    # the app's own time (30 ms a call) is what batching saves; wall-clock on a shared machine is too noisy
    assert unbatched >= 48 * 0.03 and len(on.calls) * 0.03 < 48 * 0.03 / 2


def test_requests_with_different_options_are_predicted_apart(serve, kit):
    app = kit.ColourApp(per_call=0.02)
    url = serve({"hashtags": app}, max_batch=32, max_wait_ms=50).url
    answers = asyncio.run(_burst(url, 30, kit.image_bytes(), json_extra=lambda i: {"options": {"k": 1 + i % 3}}))
    for i, r in enumerate(answers):
        assert r.status_code == 200 and r.json()["result"]["k"] == 1 + i % 3
    assert sum(app.calls) == 30 and len(app.calls) >= 3


def test_a_full_queue_answers_429_with_retry_after_and_the_rest_are_served(serve, kit):
    app = kit.ColourApp(per_call=0.2)
    server = serve({"hashtags": app}, max_batch=2, max_wait_ms=0, max_queue=4)
    answers = asyncio.run(_burst(server.url, 24, kit.image_bytes()))
    codes = [r.status_code for r in answers]
    assert set(codes) == {200, 429}, codes
    refused = [r for r in answers if r.status_code == 429]
    assert all(r.json()["error"]["reason"] == "overloaded" and r.headers["retry-after"] == "1" for r in refused)
    assert codes.count(200) == sum(app.calls)  # every request admitted was answered
    with server.client() as c:
        assert c.get("/healthz").json()["queue_depth"] == {"hashtags": 0}


def test_a_slow_answer_is_a_408_timeout(serve, kit):
    server = serve({"hashtags": kit.ColourApp(per_call=1.0)}, request_timeout_s=0.2)
    with server.client() as c:
        r = c.post("/v1/hashtags", content=kit.image_bytes(), headers={"content-type": "image/jpeg"})
    assert (r.status_code, r.json()["error"]["reason"]) == (408, "timeout")


def test_close_answers_every_waiting_request_then_refuses(kit):
    async def scenario():
        app = kit.ColourApp(per_call=0.02)
        batcher = MicroBatcher(app, max_batch=4, max_wait_ms=1, max_queue=100)
        batcher.start()
        img = Image.new("RGB", (8, 8), (1, 2, 3))
        pending = [asyncio.ensure_future(batcher.submit(img)) for _ in range(10)]
        await asyncio.sleep(0)  # all ten are waiting
        await batcher.close()
        answers = await asyncio.gather(*pending)
        with pytest.raises(ServeError) as err:
            await batcher.submit(img)
        return app, answers, err.value.reason

    app, answers, reason = asyncio.run(scenario())
    assert len(answers) == 10 and all(a.result["mean"] == [1.0, 2.0, 3.0] for a in answers)
    assert sum(app.calls) == 10 and max(app.calls) <= 4
    assert reason == "shutting_down"


def test_a_request_cancelled_while_waiting_costs_no_prediction(kit):
    async def scenario():
        app = kit.ColourApp(per_call=0.1)
        batcher = MicroBatcher(app, max_batch=1, max_wait_ms=0, max_queue=10)
        batcher.start()
        img = Image.new("RGB", (8, 8))
        first = asyncio.ensure_future(batcher.submit(img))
        second = asyncio.ensure_future(batcher.submit(img))
        await asyncio.sleep(0.02)  # first is being predicted, second waits
        second.cancel()
        await first
        await batcher.close()
        return app.calls

    assert asyncio.run(scenario()) == [1]
