"""Every route over real HTTP: the three body forms, health, metrics, OpenAPI, and a bug kept to its request."""

from __future__ import annotations

import asyncio

import httpx


def test_every_app_answers_multipart_json_and_raw_bodies(serve, colour_apps, kit):
    server = serve(colour_apps)
    with server.client() as c:
        for name in ("hashtags", "alt-text", "categorize"):
            data = kit.image_bytes((10, 200, 30), (40, 30))
            answers = [
                c.post(f"/v1/{name}", files={"image": ("a.jpg", data, "image/jpeg")}),
                c.post(f"/v1/{name}", json={"image": kit.b64(data)}),
                c.post(f"/v1/{name}", content=data, headers={"content-type": "image/jpeg"}),
            ]
            for r in answers:
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["app"] == name and body["batch_size"] >= 1
                assert (body["result"]["width"], body["result"]["height"]) == (40, 30)
                assert abs(body["result"]["mean"][1] - 200) < 4
        r = c.post("/v1/moderate", content=kit.image_bytes(size=(20, 20)), headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.json()["result"] == {"flagged": False}


def test_options_reach_the_app_from_json_and_multipart(serve, colour_apps, kit):
    server = serve(colour_apps)
    with server.client() as c:
        r = c.post("/v1/hashtags", json={"image": kit.b64(kit.image_bytes()), "options": {"k": 7}})
        assert r.json()["result"]["k"] == 7
        r = c.post("/v1/hashtags", files={"image": ("a.jpg", kit.image_bytes(), "image/jpeg")},
                   data={"options": '{"k": 2}'})
        assert r.json()["result"]["k"] == 2


def test_large_images_are_scaled_to_max_side_and_exif_orientation_applied(serve, colour_apps, kit):
    from io import BytesIO

    from PIL import Image

    img = Image.new("RGB", (300, 100), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the app must see a portrait image
    buf = BytesIO()
    img.save(buf, "JPEG", exif=exif)
    server = serve(colour_apps, max_side=150)
    with server.client() as c:
        result = c.post("/v1/hashtags", content=buf.getvalue(), headers={"content-type": "image/jpeg"}).json()["result"]
    assert (result["width"], result["height"]) == (50, 150)


def test_health_metrics_and_openapi(serve, colour_apps, kit):
    server = serve(colour_apps)
    with server.client() as c:
        health = c.get("/healthz").json()
        assert health["status"] == "ok"
        assert set(health["apps"]) == {"hashtags", "alt-text", "categorize", "moderate"}
        assert health["apps"]["hashtags"] == {"name": "hashtags", "kind": "colour", "version": 1}
        assert health["batching"]["max_batch"] == 32
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert "tagsight_requests_total" in metrics.text
        spec = c.get("/openapi.json").json()
        for name in ("hashtags", "alt-text", "categorize", "moderate", "similar"):
            body = spec["paths"][f"/v1/{name}"]["post"]["requestBody"]["content"]
            assert {"multipart/form-data", "application/json", "image/*"} <= set(body)
            assert "413" in spec["paths"][f"/v1/{name}"]["post"]["responses"]
        assert "/admin/reload" in spec["paths"] and "/healthz" in spec["paths"]
        assert c.get("/docs").status_code == 200


def test_an_app_bug_fails_only_its_own_request_and_the_server_stays_up(serve, colour_apps, kit):
    """Concurrent requests to the broken app share a batch; only the width-13 image gets the 500."""
    server = serve(colour_apps, max_wait_ms=50)

    async def burst():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            sizes = [(20, 20), (13, 20), (21, 20), (22, 20), (13, 9), (23, 20)]
            return sizes, await asyncio.gather(*(
                c.post("/v1/moderate", content=kit.image_bytes(size=s), headers={"content-type": "image/jpeg"})
                for s in sizes))

    sizes, answers = asyncio.run(burst())
    for size, r in zip(sizes, answers):
        if size[0] == 13:
            assert r.status_code == 500 and r.json()["error"]["reason"] == "internal_error"
        else:
            assert r.status_code == 200, r.text
    calls = colour_apps["moderate"].calls
    assert max(calls) > 1 and calls.count(1) >= len(sizes)  # one shared batch, then one by one
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
        assert c.post("/v1/moderate", content=kit.image_bytes(size=(30, 30)),
                      headers={"content-type": "image/jpeg"}).status_code == 200


def test_the_serving_page_lists_every_reason_code():
    from pathlib import Path

    from tagsight.serve.errors import REASONS

    page = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    for reason, (status, _) in REASONS.items():
        assert f"| {status} | `{reason}` |" in page, reason


def test_query_parameters_are_options_and_unknown_or_doubled_ones_are_refused(serve, colour_apps, kit):
    server = serve(colour_apps)
    with server.client() as c:
        raw = {"content": kit.image_bytes(), "headers": {"content-type": "image/jpeg"}}
        r = c.post("/v1/hashtags?k=2", **raw)
        assert r.status_code == 200 and r.json()["result"]["k"] == 2
        r = c.post("/v1/hashtags?k=two", **raw)   # text: ColourApp refuses it
        assert r.status_code == 422 and r.json()["error"]["reason"] == "invalid_option"
        r = c.post("/v1/hashtags?colour=red", **raw)
        assert r.status_code == 422 and r.json()["error"]["reason"] == "unknown_option"
        r = c.post("/v1/hashtags?k=2", json={"image": kit.b64(kit.image_bytes()), "options": {"k": 3}})
        assert r.status_code == 422 and r.json()["error"]["reason"] == "invalid_options"
        r = c.post("/v1/hashtags?k=2&k=3", **raw)
        assert r.status_code == 422 and r.json()["error"]["reason"] == "invalid_options"


def test_docs_page_loads_every_asset_from_the_server_itself(serve, colour_apps):
    import re

    server = serve(colour_apps)
    with server.client() as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: '([^']+)'", page.text)
        assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
        for u in urls:
            got = c.get(u)
            assert got.status_code == 200 and len(got.content) > 100, u
        assert any(u.endswith("swagger-ui-bundle.js") for u in urls)
