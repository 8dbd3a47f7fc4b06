import io
import json

import pytest
from PIL import Image

from tagsight.apps.embedder import Embedder
from tagsight.apps.run import load_run
from tagsight.apps.similar import SimilarApp, build_index
from tagsight.data.index import SampleIndex
from tagsight.privacy.tombstones import Tombstone, add_tombstones


@pytest.fixture
def dataset_copy(tiny_run, tmp_path):
    import shutil

    shutil.copytree(tiny_run[0], tmp_path / "ds")
    return tmp_path / "ds"


@pytest.fixture(scope="module")
def embedder(tiny_run):
    return Embedder(load_run(tiny_run[2]).backbone)


def sample_image(index, i):
    return Image.open(io.BytesIO(index.read_jpeg(i))).convert("RGB")


def test_index_returns_the_query_itself_first_and_never_a_tombstoned_post(dataset_copy, embedder, tmp_path):
    samples = SampleIndex.build(dataset_copy)
    # one tombstone before the build: that post is never indexed
    add_tombstones(dataset_copy, [Tombstone("post", samples.post_keys[0])])
    info = build_index(dataset_copy, embedder, tmp_path / "index", "tiny")
    gone_at_build = sum(k == samples.post_keys[0] for k in samples.post_keys)
    assert info["counts"]["excluded_tombstoned"] == gone_at_build
    assert info["counts"]["indexed"] + gone_at_build == len(samples)
    app = SimilarApp(embedder, tmp_path / "index")
    q = 5
    first = app.predict([sample_image(samples, q)], k=5)[0]["neighbours"]
    assert first[0]["sample_key"] == samples.keys[q] and first[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert len(first) == 5 and all(n["post_key"] != samples.post_keys[0] for n in first)
    assert "author_id" not in first[0]
    # forget the query's post AFTER the build, query again on the same app object: gone, no reload
    add_tombstones(dataset_copy, [Tombstone("post", samples.post_keys[q])])
    again = app.predict([sample_image(samples, q)], k=5)[0]["neighbours"]
    assert len(again) == 5 and all(n["post_key"] != samples.post_keys[q] for n in again)
    # forgetting an author removes every post of theirs from the answers
    meta = samples.read_meta(samples.keys.index(again[0]["sample_key"]))
    add_tombstones(dataset_copy, [Tombstone("author", meta["author_id"])])
    third = app.predict([sample_image(samples, q)], k=len(app))[0]["neighbours"]
    authors = {samples.read_meta(samples.keys.index(n["sample_key"]))["author_id"] for n in third}
    assert meta["author_id"] not in authors and third


def test_remove_persists(dataset_copy, embedder, tmp_path):
    samples = SampleIndex.build(dataset_copy)
    build_index(dataset_copy, embedder, tmp_path / "index")
    app = SimilarApp(embedder, tmp_path / "index")
    before = len(app)
    key = samples.post_keys[3]
    removed = app.remove([key, "nobody/none"])
    assert removed == sum(k == key for k in samples.post_keys) and len(app) == before - removed
    assert all(n["post_key"] != key for n in app.predict([sample_image(samples, 3)], k=5)[0]["neighbours"])
    fresh = SimilarApp(embedder, tmp_path / "index")
    assert len(fresh) == before - removed and all(e["post_key"] != key for e in fresh.entries.values())
    info = json.loads((tmp_path / "index" / "index.json").read_text())
    assert info["counts"]["removed"] == removed and info["counts"]["indexed"] == len(fresh)
    assert app.remove([key]) == 0


def test_add_indexes_new_photos_persists_and_refuses_forgotten_posts(dataset_copy, embedder, tmp_path):
    from tagsight.fsio import ReasonError

    samples = SampleIndex.build(dataset_copy)
    build_index(dataset_copy, embedder, tmp_path / "index")
    app = SimilarApp(embedder, tmp_path / "index")
    before = len(app)
    photo = sample_image(samples, 2).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert app.add([photo], [{"post_key": "upload/new1", "author_id": "zed", "hashtags": ["dog"]}]) == 1
    top = app.predict([photo], k=1)[0]["neighbours"][0]
    assert top["post_key"] == "upload/new1" and top["similarity"] == pytest.approx(1.0, abs=1e-4)
    fresh = SimilarApp(embedder, tmp_path / "index")
    assert len(fresh) == before + 1 and any(e["post_key"] == "upload/new1" for e in fresh.entries.values())
    add_tombstones(dataset_copy, [Tombstone("author", "zed")])
    with pytest.raises(ReasonError, match="forgotten"):
        app.add([photo], [{"post_key": "upload/new2", "author_id": "zed", "hashtags": []}])
    assert all(n["post_key"] != "upload/new1" for n in app.predict([photo], k=5)[0]["neighbours"])
    assert len(app) == before + 1


def test_index_cli_build_and_remove(tiny_run, dataset_copy, tmp_path, capsys):
    from tagsight.cli import main

    run = str(tiny_run[2])
    capsys.readouterr()
    assert main(["-q", "index", "build", str(dataset_copy), "--backbone", run, "--out", str(tmp_path / "ix"), "--json"]) == 0
    built = json.loads(capsys.readouterr().out)["counts"]
    key = SampleIndex.build(dataset_copy).post_keys[0]
    assert main(["-q", "index", "remove", str(tmp_path / "ix"), key, "--backbone", run, "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert removed["removed_samples"] >= 1 and removed["indexed"] == built["indexed"] - removed["removed_samples"]
