"""bench/serve's multi-app rows: the stand-in apps share one backbone, the rows' arithmetic, and post.lua's PATHS."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "bench" / "serve"))

from bench_app import StandInHead, stand_in_apps  # noqa: E402
from serve.run import MultiRow, multi_paths, parse_wrk  # noqa: E402


@pytest.fixture(scope="module")
def apps():
    return stand_in_apps(3, arch="resnet10t", size=32)


def test_the_stand_in_apps_share_one_backbone_and_analyze_runs_it_once(apps):
    from tagsight.serve.analyze import MultiApp

    assert list(apps) == ["hashtags", "alt-text", "categorize"] and all(isinstance(a, StandInHead) for a in apps.values())
    embedder = apps["hashtags"].embedder
    assert all(a.embedder is embedder for a in apps.values())
    calls = []
    embed = embedder.embed
    embedder.embed = lambda images: calls.append(len(images)) or embed(images)
    try:
        images = [Image.new("RGB", (40, 30), c) for c in ((200, 0, 0), (0, 200, 0))]
        out = MultiApp(apps).predict_mixed(images, [{"apps": list(apps), "options": {}}] * 2)
    finally:
        embedder.embed = embed
    assert calls == [2] and all(list(o) == list(apps) for o in out)
    assert len(out[0]["alt-text"]["labels"]) == 5 and out[0]["alt-text"]["labels"][0]["label"].startswith("alt-text_")


def test_multi_rows_count_photos_not_requests():
    single = MultiRow("single", 3, 8, 300, 30.0, 10.0, 20.0, 0, 12.0, "0.5 0.4 0.3")
    analyze = MultiRow("analyze", 3, 8, 150, 15.0, 20.0, 40.0, 0, 14.0, "0.5 0.4 0.3")
    assert single.photos_per_s == 10.0 and single.cpu_ms_per_photo == 36.0
    assert analyze.photos_per_s == 15.0 and analyze.cpu_ms_per_photo == 14.0
    assert multi_paths("single", ["hashtags", "alt-text"]) == "/v1/hashtags /v1/alt-text"
    assert multi_paths("analyze", ["hashtags", "alt-text"]) == "/v1/analyze?apps=hashtags,alt-text"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="Debian's wrk is not installed (apt-get install -y wrk)")
def test_post_lua_posts_each_photo_to_every_path(apps, tmp_path):
    """One second of wrk at one connection against an in-process server: every request of PATHS is answered."""
    from tagsight.serve.app import create_app
    from tagsight.serve.background import BackgroundServer

    boundary = "b0undary"
    buf = io.BytesIO()
    Image.new("RGB", (48, 40), (10, 120, 200)).save(buf, "JPEG")
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    (tmp_path / "body-0.bin").write_bytes(body)
    env = {**os.environ, "BODY_DIR": str(tmp_path), "BODY_COUNT": "1", "BOUNDARY": boundary}
    with BackgroundServer(create_app(apps)) as server:
        for mode in ("single", "analyze"):
            done = subprocess.run(["wrk", "-t", "1", "-c", "1", "-d", "1s", "--latency", "-s",
                                   str(REPO / "bench" / "serve" / "post.lua"), server.url + "/v1/hashtags"],
                                  env={**env, "PATHS": multi_paths(mode, list(apps))}, capture_output=True,
                                  text=True, timeout=60, check=True)
            found = parse_wrk(done.stdout)
            assert found["requests"] >= 1 and found["non_2xx"] == 0, done.stdout
        metrics = httpx.get(server.url + "/metrics").text
    for app in ("hashtags", "alt-text", "categorize", "analyze"):   # every path was posted to
        assert f'tagsight_batch_size_count{{app="{app}"}}' in metrics, app
