"""``curate review DATASET`` with the dataset at an fsspec URL (``memory://``: the code path of ``s3://`` without a
server): served from a local copy, the reviews published back (``catalog/reviews.parquet``, one object; the manifest
untouched) when the server stops; a server that failed keeps its reviews for the next run; a dataset without its
manifest is refused. Also ``curate report`` (the page beside the dataset) and ``curate aesthetic-train --out URL``."""

from __future__ import annotations

import io
import json

import pytest
import uvicorn

from tagsight.cli import main
from tagsight.curate.chain import CurateConfig, FilterSpec, run_filters
from tagsight.storage import exists, open_filesystem, read_bytes
from tests.s3server import put_folder

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

REVIEWS = "catalog/reviews.parquet"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def stored(tiny_dataset, make_photo, tmp_path):
    ds = tiny_dataset(posts=6, pictures=lambda n: make_photo(n, (96, 72)), max_side=96)
    run_filters(ds, CurateConfig((FilterSpec("blur"), FilterSpec("aesthetic"))))
    url = f"memory://review-{tmp_path.name}/ds"
    put_folder(ds, url)
    return url


def reviewers_on(url: str) -> list[str]:
    import pyarrow.parquet as pq

    return [r["reviewer"] for r in pq.read_table(io.BytesIO(read_bytes(f"{url}/{REVIEWS}"))).to_pylist()]


def reviewing(who: str, n: int, then=None):
    """A stand-in for uvicorn.run: ``who`` keeps the first ``n`` photos through the real app, then ``then()``."""
    def run(app, **kwargs):
        client = TestClient(app)
        items = client.get("/api/next", params={"stage": "generalist", "reviewer": who, "n": 64}).json()["items"]
        for item in items[:n]:
            assert client.post("/api/review", json={"key": item["key"], "reviewer": who, "stage": "generalist",
                                                    "decision": "keep"}).json() == {"ok": True}
        if then is not None:
            then()
    return run


def test_reviews_of_a_dataset_on_a_store_are_published_when_the_server_stops(stored, capsys, monkeypatch):
    manifest = read_bytes(f"{stored}/manifest.json")
    monkeypatch.setattr(uvicorn, "run", reviewing("ann", 3))
    assert main(["-q", "curate", "review", stored]) == 0
    assert reviewers_on(stored) == ["ann"] * 3 and read_bytes(f"{stored}/manifest.json") == manifest
    capsys.readouterr()
    assert main(["-q", "curate", "review", stored, "--stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["generalist"]["reviewers"] == 1

    def crash():
        raise OSError("address already in use")

    monkeypatch.setattr(uvicorn, "run", reviewing("bob", 2, then=crash))
    assert main(["-q", "curate", "review", stored]) == 2       # nothing published: bob's reviews stay here
    assert "address already in use" in capsys.readouterr().err and reviewers_on(stored) == ["ann"] * 3
    monkeypatch.setattr(uvicorn, "run", reviewing("cat", 1))
    assert main(["-q", "curate", "review", stored]) == 0       # the next run publishes them with its own
    assert sorted(reviewers_on(stored)) == ["ann"] * 3 + ["bob"] * 2 + ["cat"]


def test_a_dataset_without_its_manifest_is_not_reviewed(tmp_path, capsys, monkeypatch):
    url = f"memory://review-half-{tmp_path.name}/ds"
    fs, inner = open_filesystem(url)
    fs.pipe_file(f"{inner}/shards/shard-00000.tar", b"tar")     # an ingest upload cut off before manifest.json
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("served an unfinished dataset"))
    assert main(["-q", "curate", "review", url]) == 2
    err = capsys.readouterr().err
    assert "artifact_incomplete" in err and url in err
    assert not exists(f"{url}/{REVIEWS}")


def test_the_curation_page_of_a_dataset_on_a_store_is_written_beside_it(stored, capsys):
    assert main(["-q", "curate", "report", stored]) == 0
    page = read_bytes(f"{stored}/curation.html").decode()
    assert f"{stored}" in page and capsys.readouterr().out.strip() == f"{stored}/curation.html"


def test_reviews_go_back_to_a_real_s3_api(tiny_dataset, make_photo, monkeypatch):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.s3server import bucket, environ, moto_s3, s3_env

    ds = tiny_dataset(posts=4, pictures=lambda n: make_photo(n, (96, 72)), max_side=96)
    run_filters(ds, CurateConfig((FilterSpec("blur"),)))
    url = "s3://curate-review/ds"
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(url)
        put_folder(ds, url)
        monkeypatch.setattr(uvicorn, "run", reviewing("ann", 2))
        assert main(["-q", "curate", "review", url]) == 0
        monkeypatch.setattr(uvicorn, "run", reviewing("bob", 1))
        assert main(["-q", "curate", "review", url]) == 0      # the copy brought up to date (ETags), then extended
        assert sorted(reviewers_on(url)) == ["ann", "ann", "bob"]


def test_an_aesthetic_head_trained_on_a_dataset_on_a_store_is_written_to_a_url(tiny_dataset, make_photo, tmp_path,
                                                                                capsys):
    from tagsight.curate.reviews import append_reviews
    from tagsight.data.index import SampleIndex

    ds = tiny_dataset(posts=6, pictures=lambda n: make_photo(n, (96, 72)), max_side=96)
    index = SampleIndex.build(ds)
    append_reviews(ds, [{"key": key, "post_key": index.post_keys[i], "reviewer": "cat", "stage": "specialist",
                         **dict.fromkeys(("composition", "lighting", "colour", "subject", "storytelling"), 1 + i % 5)}
                        for i, key in enumerate(index.keys[:6])])
    store = f"memory://aesthetic-train-{tmp_path.name}"
    put_folder(ds, f"{store}/ds")
    assert main(["-q", "curate", "aesthetic-train", f"{store}/ds", "--backbone", "timm:resnet18", "--img-size", "32",
                 "--out", f"{store}/heads/h.json"]) == 0
    head = json.loads(read_bytes(f"{store}/heads/h.json"))
    assert head["stats"]["ratings"] == 6 and head["backbone"] == "timm:resnet18"
