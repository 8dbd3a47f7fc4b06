"""``/metrics`` parses as Prometheus text and its counts reconcile with what was sent."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_reconcile_with_the_requests_sent(serve, kit):
    app = kit.ColourApp(per_call=0.02)
    server = serve({"hashtags": app}, max_batch=8, max_wait_ms=20)

    async def send():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            good = [c.post("/v1/hashtags", content=kit.image_bytes(), headers={"content-type": "image/jpeg"})
                    for _ in range(20)]
            bad = [c.post("/v1/hashtags", content=b"nope", headers={"content-type": "image/jpeg"}) for _ in range(3)]
            wrong = [c.post("/v1/hashtags", content=b"x", headers={"content-type": "text/csv"}) for _ in range(2)]
            return await asyncio.gather(*good, *bad, *wrong)

    answers = asyncio.run(send())
    assert [r.status_code for r in answers] == [200] * 20 + [415] * 5
    with server.client() as c:
        text = c.get("/metrics").text
    m = samples(text)
    ep = ("endpoint", "/v1/hashtags")
    assert m[("tagsight_requests_total", (ep, ("status", "200")))] == 20
    assert m[("tagsight_requests_total", (ep, ("status", "415")))] == 5
    assert m[("tagsight_rejections_total", (("reason", "not_an_image"),))] == 3
    assert m[("tagsight_rejections_total", (("reason", "unsupported_media_type"),))] == 2
    assert m[("tagsight_request_seconds_count", (ep,))] == 25
    assert m[("tagsight_batch_size_sum", (("app", "hashtags"),))] == 20 == sum(app.calls)
    assert m[("tagsight_batch_size_count", (("app", "hashtags"),))] == len(app.calls)
    assert m[("tagsight_predict_seconds_count", (("app", "hashtags"),))] == len(app.calls)
    assert m[("tagsight_queue_depth", (("app", "hashtags"),))] == 0
    assert m[("tagsight_apps_loaded", ())] == 1
    assert not any(name.endswith("_created") for name, _ in m)
