"""Admin routes over real HTTP: the token, index add/remove, tombstones honoured live, reload under load."""

from __future__ import annotations

import asyncio
import threading

import httpx

from tagsight.privacy.tombstones import Tombstone, add_tombstones

ADMIN = "/admin/reload"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_admin_routes_need_the_right_token(serve, colour_apps, kit):
    server = serve(colour_apps, admin_token=kit.TOKEN, loader=lambda: colour_apps)
    with server.client() as c:
        r = c.post(ADMIN)
        assert (r.status_code, r.json()["error"]["reason"]) == (401, "admin_token_missing")
        assert r.headers["www-authenticate"] == "Bearer"
        r = c.post(ADMIN, headers={"authorization": "Basic abc"})
        assert (r.status_code, r.json()["error"]["reason"]) == (401, "admin_token_missing")
        r = c.post(ADMIN, headers=auth(kit.TOKEN + "x"))
        assert (r.status_code, r.json()["error"]["reason"]) == (403, "admin_token_invalid")
        r = c.post("/admin/similar/remove", headers=auth("wrong-token-wrong-token"), json={"post_keys": ["a/1"]})
        assert r.status_code == 403
        assert c.post(ADMIN, headers=auth(kit.TOKEN)).status_code == 200


def test_without_a_token_admin_is_disabled(serve, colour_apps, kit):
    server = serve(colour_apps, loader=lambda: colour_apps)
    with server.client() as c:
        r = c.post(ADMIN, headers=auth(kit.TOKEN))
        assert (r.status_code, r.json()["error"]["reason"]) == (403, "admin_disabled")


def _similar(c: httpx.Client, kit, colour, k: int = 10) -> list[str]:
    r = c.post("/v1/similar", json={"image": kit.b64(kit.image_bytes(colour, fmt="PNG")), "options": {"k": k}})
    assert r.status_code == 200, r.text
    return [n["post_key"] for n in r.json()["result"]["neighbours"]]


def _add(c: httpx.Client, kit, key: str, author: str, colour, tags=()) -> httpx.Response:
    return c.post("/admin/similar/add", headers=auth(kit.TOKEN), json={
        "image": kit.b64(kit.image_bytes(colour, fmt="PNG")), "post_key": key, "author_id": author,
        "hashtags": list(tags)})


def test_index_add_remove_and_new_tombstones_without_a_restart(serve, kit, tmp_path):
    dataset = tmp_path / "dataset"
    similar = kit.SimilarColours(dataset)
    server = serve({"similar": similar, "hashtags": kit.ColourApp()}, admin_token=kit.TOKEN)
    with server.client() as c:
        for i, author in enumerate(["ann", "bob", "cat", "bob"]):
            r = _add(c, kit, f"src/{i}", author, (10 * i, 0, 0), ["beach"] if i == 2 else [])
            assert r.json() == {"app": "similar", "added": 1}
        assert _similar(c, kit, (0, 0, 0)) == ["src/0", "src/1", "src/2", "src/3"]

        add_tombstones(dataset, [Tombstone("post", "src/0")])  # while the server runs
        assert _similar(c, kit, (0, 0, 0)) == ["src/1", "src/2", "src/3"]
        add_tombstones(dataset, [Tombstone("author", "bob"), Tombstone("hashtag", "#Beach")])
        assert _similar(c, kit, (0, 0, 0)) == []
        r = _add(c, kit, "src/9", "bob", (5, 5, 5))  # a forgotten author's new post is refused
        assert r.json()["added"] == 0

        assert _add(c, kit, "src/10", "dan", (1, 1, 1)).json()["added"] == 1
        r = c.post("/admin/similar/remove", headers=auth(kit.TOKEN), json={"post_keys": ["src/10", "nope/1"]})
        assert r.json() == {"app": "similar", "removed": 1}
        assert _similar(c, kit, (0, 0, 0)) == []


def test_index_admin_errors(serve, colour_apps, kit, tmp_path):
    server = serve({**colour_apps, "similar": kit.SimilarColours(tmp_path)}, admin_token=kit.TOKEN)
    h = auth(kit.TOKEN)
    with server.client() as c:
        r = c.post("/admin/hashtags/add", headers=h, json={"image": "", "post_key": "a/1", "author_id": "x"})
        assert (r.status_code, r.json()["error"]["reason"]) == (409, "not_an_index")
        r = c.post("/admin/nothing/remove", headers=h, json={"post_keys": ["a/1"]})
        assert (r.status_code, r.json()["error"]["reason"]) == (404, "app_not_loaded")
        r = c.post("/admin/similar/remove", headers=h, json={"post_keys": []})
        assert (r.status_code, r.json()["error"]["reason"]) == (422, "invalid_request")
        r = c.post("/admin/similar/remove", headers=h, content=b"{oops", )
        assert (r.status_code, r.json()["error"]["reason"]) == (400, "malformed_json")
        r = c.post("/admin/similar/add", headers=h, json={"image": kit.b64(b"text"), "post_key": "a/1",
                                                         "author_id": "x"})
        assert (r.status_code, r.json()["error"]["reason"]) == (415, "not_an_image")
        r = c.post("/admin/similar/add", headers=h, json={"post_key": "a/1"})
        assert (r.status_code, r.json()["error"]["reason"]) == (422, "invalid_request")
        r = c.post(ADMIN, headers=h)
        assert (r.status_code, r.json()["error"]["reason"]) == (409, "reload_unavailable")


def test_reload_swaps_apps_under_load_without_dropping_a_request(serve, kit):
    versions = iter(range(2, 100))

    def loader():
        return {"hashtags": kit.ColourApp(per_call=0.01, version=next(versions))}

    server = serve({"hashtags": kit.ColourApp(per_call=0.01, version=1)}, admin_token=kit.TOKEN, loader=loader)
    data = kit.image_bytes()
    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    async def load():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            async def one_client():
                while not stop.is_set():
                    r = await c.post("/v1/hashtags", content=data, headers={"content-type": "image/jpeg"})
                    seen.append((r.status_code, r.json().get("result", {}).get("version", -1)))
            await asyncio.gather(*(one_client() for _ in range(8)))

    clients = threading.Thread(target=lambda: asyncio.run(load()))
    clients.start()
    try:
        with server.client() as c:
            while len(seen) < 20:
                threading.Event().wait(0.01)
            for expected in (2, 3):
                r = c.post(ADMIN, headers=auth(kit.TOKEN))
                assert r.status_code == 200 and r.json()["apps"] == ["hashtags"], r.text
                assert r.json()["reloads"] == expected - 1
                count = len(seen)
                while len(seen) < count + 20:
                    threading.Event().wait(0.01)
    finally:
        stop.set()
        clients.join(30)
    assert {status for status, _ in seen} == {200}, {s for s, _ in seen}
    order = [v for _, v in seen]
    assert {1, 2, 3} <= set(order) and order[-1] == 3
    with server.client() as c:
        assert c.get("/healthz").json()["apps"]["hashtags"]["version"] == 3


def test_a_reload_can_bring_in_a_new_app(serve, kit):
    server = serve({"hashtags": kit.ColourApp()}, admin_token=kit.TOKEN,
                   loader=lambda: {"hashtags": kit.ColourApp(), "colours": kit.ColourApp("colours")})
    with server.client() as c:
        post = lambda: c.post("/v1/colours", content=kit.image_bytes(), headers={"content-type": "image/jpeg"})  # noqa: E731
        assert post().json()["error"]["reason"] == "app_not_loaded"
        assert c.post(ADMIN, headers=auth(kit.TOKEN)).json()["apps"] == ["colours", "hashtags"]
        assert post().json()["app"] == "colours"


def test_a_failed_reload_keeps_the_old_apps_serving(serve, kit):
    def broken_loader():
        raise FileNotFoundError("bundle/model.safetensors")

    server = serve({"hashtags": kit.ColourApp()}, admin_token=kit.TOKEN, loader=broken_loader)
    with server.client() as c:
        r = c.post(ADMIN, headers=auth(kit.TOKEN))
        assert (r.status_code, r.json()["error"]["reason"]) == (409, "reload_failed")
        assert "model.safetensors" in r.json()["error"]["message"]
        ok = c.post("/v1/hashtags", content=kit.image_bytes(), headers={"content-type": "image/jpeg"})
        assert ok.status_code == 200 and ok.json()["result"]["version"] == 1
        assert 'tagsight_reloads_total{outcome="failed"} 1.0' in c.get("/metrics").text
