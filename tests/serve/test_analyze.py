"""``POST /v1/analyze``: several apps for one image, one backbone pass per batch, options checked before queueing."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tagsight.apps.embedder import FeatureApp
from tagsight.fsio import ReasonError
from tagsight.serve.analyze import MultiApp


class CountingEmbedder:
    """Mean colour as a 3-feature 'backbone'; counts the images it embeds, per call."""

    num_features, fingerprint = 3, "counting"

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        with self._lock:
            self.calls.append(len(images))
        return np.asarray([np.asarray(im.convert("RGB"), dtype=np.float32).mean(axis=(0, 1)) for im in images],
                          dtype=np.float32).reshape(-1, 3)


class Dominant(FeatureApp):
    """The dominant channel of the features."""

    name = "dominant"

    def predict_features(self, features: np.ndarray, images=None, **options: Any) -> list[dict[str, Any]]:
        self.check_options(options)
        return [{"channel": "rgb"[int(np.argmax(row))]} for row in features]


class Brightness(FeatureApp):
    """Mean of the features times ``scale`` (>= 0)."""

    name = "bright"
    options = {"scale": float}

    def check_option_values(self, options: dict[str, Any]) -> None:
        if options.get("scale", 1.0) < 0:
            raise ReasonError("bad_option", f"scale must be >= 0, got {options['scale']}")

    def predict_features(self, features: np.ndarray, images=None, **options: Any) -> list[dict[str, Any]]:
        scale = self.check_options(options).get("scale", 1.0)
        return [{"brightness": round(float(row.mean()) * scale, 3)} for row in features]


def feature_apps(kit):
    embedder = CountingEmbedder()
    apps = {"dominant": Dominant(embedder), "bright": Brightness(embedder), "hashtags": kit.ColourApp(per_call=0)}
    return embedder, apps


def jpeg(kit, colour=(200, 30, 40)) -> dict[str, Any]:
    return {"content": kit.image_bytes(colour), "headers": {"content-type": "image/jpeg"}}


def test_one_request_answers_every_app_asked_from_one_backbone_pass(serve, kit):
    embedder, apps = feature_apps(kit)
    with serve(apps).client() as c:
        r = c.post("/v1/analyze?apps=bright,dominant,hashtags&bright.scale=2&hashtags.k=1", **jpeg(kit))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["apps"] == ["bright", "dominant", "hashtags"] and list(body["results"]) == body["apps"]
    assert body["results"]["dominant"] == {"channel": "r"}
    assert body["results"]["hashtags"]["k"] == 1 and body["batch_size"] == 1
    mean = np.asarray(Image.open(io.BytesIO(kit.image_bytes())).convert("RGB"), np.float32).mean()
    assert abs(body["results"]["bright"]["brightness"] - 2 * mean) < 0.01
    assert embedder.calls == [1]   # two feature apps, one backbone pass


def test_apps_come_from_the_form_or_the_json_body_with_per_app_options(serve, kit):
    embedder, apps = feature_apps(kit)
    with serve(apps).client() as c:
        form = c.post("/v1/analyze", files={"image": ("a.jpg", kit.image_bytes(), "image/jpeg")},
                      data={"apps": "dominant, bright", "options": json.dumps({"bright": {"scale": 0}})})
        body = c.post("/v1/analyze", json={"image": kit.b64(kit.image_bytes()), "apps": ["bright"],
                                           "options": {"bright": {"scale": 0}}})
    assert form.status_code == 200, form.text
    assert form.json()["apps"] == ["dominant", "bright"] and form.json()["results"]["bright"]["brightness"] == 0
    assert body.status_code == 200 and body.json()["results"] == {"bright": {"brightness": 0.0}}


def test_concurrent_requests_for_different_apps_share_one_backbone_pass(serve, kit):
    embedder, apps = feature_apps(kit)
    url = serve(apps, max_batch=16, max_wait_ms=300).url
    asks = ["dominant", "bright", "dominant,bright", "bright&bright.scale=3"] * 2

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            return await asyncio.gather(*(c.post(f"/v1/analyze?apps={a}", **jpeg(kit)) for a in asks))

    answers = asyncio.run(burst())
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert [list(r.json()["results"]) for r in answers] == [a.split("&")[0].split(",") for a in asks]
    assert sum(embedder.calls) == len(asks) and len(embedder.calls) < len(asks)   # batched: fewer passes than requests
    assert max(r.json()["batch_size"] for r in answers) > 1
    scaled = [r.json()["results"]["bright"]["brightness"] for a, r in zip(asks, answers) if "scale" in a]
    plain = [r.json()["results"]["bright"]["brightness"] for a, r in zip(asks, answers) if a == "bright"]
    assert all(abs(s - 3 * plain[0]) < 0.01 for s in scaled)


class Picky(FeatureApp):
    """Refuses (its own reason) images 13 pixels wide; answers the others."""

    name = "picky"

    def predict_features(self, features: np.ndarray, images=None, **options: Any) -> list[dict[str, Any]]:
        if any(im.width == 13 for im in images):
            raise ReasonError("too_narrow", "an image 13 pixels wide")
        return [{"ok": True} for _ in features]


def test_one_requests_refusal_in_a_mixed_batch_does_not_answer_the_others(serve, kit):
    embedder, apps = feature_apps(kit)
    apps["picky"] = Picky(embedder)
    url = serve(apps, max_batch=8, max_wait_ms=300).url

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            return await asyncio.gather(*(c.post(f"/v1/analyze?apps={a}", content=kit.image_bytes(size=(w, 20)),
                                                 headers={"content-type": "image/jpeg"})
                                          for a, w in (("picky,dominant", 13), ("picky", 30), ("dominant", 13))))

    bad, good, other = asyncio.run(burst())
    assert bad.status_code == 422 and bad.json()["error"]["reason"] == "app_rejected", bad.text
    assert good.status_code == 200 and good.json()["results"] == {"picky": {"ok": True}}
    assert other.status_code == 200 and list(other.json()["results"]) == ["dominant"]
    assert embedder.calls[0] == 3   # the three were one batch, then answered one by one after the refusal


def test_bad_requests_are_refused_with_their_reason_before_anything_is_queued(serve, kit):
    embedder, apps = feature_apps(kit)
    cases = {"/v1/analyze?apps=dominant,nope": (404, "unknown_app"),
             "/v1/analyze": (422, "missing_apps"),
             "/v1/analyze?apps=bright&bright.gain=2": (422, "unknown_option"),
             "/v1/analyze?apps=bright&bright.scale=-1": (422, "invalid_option"),
             "/v1/analyze?apps=bright&bright.scale=big": (422, "invalid_option"),
             "/v1/analyze?apps=bright&scale=2": (422, "invalid_options"),
             "/v1/analyze?apps=bright&dominant.x=2": (422, "invalid_options"),
             "/v1/analyze?apps=bright&apps=dominant": (422, "invalid_request"),
             "/v1/analyze?apps=hashtags&hashtags.q=1": (422, "unknown_option"),
             "/v1/bright?scale=-1": (422, "invalid_option"),
             "/v1/bright?gain=1": (422, "unknown_option")}
    with serve(apps).client() as c:
        for path, (status, reason) in cases.items():
            r = c.post(path, **jpeg(kit))
            assert (r.status_code, r.json()["error"]["reason"]) == (status, reason), (path, r.text)
        flat = c.post("/v1/analyze?apps=bright", json={"image": kit.b64(kit.image_bytes()), "options": {"scale": 2}})
        assert flat.status_code == 422 and flat.json()["error"]["reason"] == "invalid_options"
    assert embedder.calls == [] and apps["hashtags"].calls == []


def test_multi_app_answers_mixed_requests_in_order():
    embedder = CountingEmbedder()
    multi = MultiApp({"dominant": Dominant(embedder), "bright": Brightness(embedder)})
    images = [Image.new("RGB", (4, 4), c) for c in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    asks = [{"apps": ["dominant"], "options": {}}, {"apps": ["bright", "dominant"], "options": {"bright": {"scale": 0}}},
            {"apps": ["bright"], "options": {}}]
    out = multi.predict_mixed(images, asks)
    assert out == [{"dominant": {"channel": "r"}}, {"bright": {"brightness": 0.0}, "dominant": {"channel": "g"}},
                   {"bright": {"brightness": round(250 / 3, 3)}}]
    assert list(out[1]) == ["bright", "dominant"] and embedder.calls == [3]


def test_openapi_documents_the_analyze_route(serve, kit):
    _, apps = feature_apps(kit)
    with serve(apps).client() as c:
        spec = c.get("/openapi.json").json()
    route = spec["paths"]["/v1/analyze"]["post"]
    assert any(p["name"] == "apps" for p in route["parameters"]) and "404" in route["responses"]


def test_a_reload_brings_its_apps_to_analyze(serve, kit):
    embedder, apps = feature_apps(kit)
    server = serve({"dominant": apps["dominant"]}, admin_token=kit.TOKEN, loader=lambda: apps)
    with server.client() as c:
        before = c.post("/v1/analyze?apps=dominant,bright", **jpeg(kit))
        assert (before.status_code, before.json()["error"]["reason"]) == (404, "unknown_app")
        assert c.post("/admin/reload", headers={"Authorization": f"Bearer {kit.TOKEN}"}).status_code == 200
        after = c.post("/v1/analyze?apps=dominant,bright", **jpeg(kit))
    assert after.status_code == 200 and list(after.json()["results"]) == ["dominant", "bright"]
    assert embedder.calls == [1]
