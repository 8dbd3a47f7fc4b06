"""Artifact folders on object storage: mirrored to read (kept up to date), staged to write and published marker last."""

import json

import pytest

from tagsight.fsio import ReasonError
from tagsight.storage import (local_folder, mirror_folder, mirror_origin, open_filesystem, relative_url,
                              output_folder, resolve_from)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def put(url, files):
    fs, inner = open_filesystem(url)
    for name, text in files.items():
        fs.pipe_file(f"{inner}/{name}", text.encode())


def remote_names(url):
    fs, inner = open_filesystem(url)
    return sorted(p.split(inner.strip("/") + "/", 1)[1] for p in fs.find(inner))


def test_a_url_is_mirrored_and_brought_up_to_date(tmp_path):
    url = "memory://art/bundle-a"
    put(url, {"bundle.json": '{"backbone": "x"}', "heads/h/head.json": "1"})
    local = local_folder(url, marker="bundle.json")
    assert (local / "heads/h/head.json").read_text() == "1" and mirror_origin(local) == url
    put(url, {"heads/h/head.json": "22"})
    fs, inner = open_filesystem(url)
    fs.rm_file(f"{inner}/bundle.json")
    put(url, {"bundle.json": '{"backbone": "y"}'})
    again = mirror_folder(url, marker="bundle.json")
    assert again == local and (local / "heads/h/head.json").read_text() == "22"
    assert json.loads((local / "bundle.json").read_text()) == {"backbone": "y"}
    fs.rm_file(f"{inner}/heads/h/head.json")
    mirror_folder(url)
    assert not (local / "heads/h/head.json").exists()


def test_local_paths_are_used_as_they_are(tmp_path):
    assert local_folder(str(tmp_path)) == tmp_path and local_folder(f"file://{tmp_path}") == tmp_path


def test_unfinished_or_missing_artifacts_are_refused():
    put("memory://art/half", {"checkpoints/step-1.pt": "w"})
    with pytest.raises(ReasonError) as err:
        local_folder("memory://art/half", marker="run.json")
    assert err.value.reason == "artifact_incomplete"
    with pytest.raises(ReasonError) as err:
        local_folder("memory://art/nothing-here", marker="run.json")
    assert err.value.reason == "artifact_missing"


def test_paths_inside_a_mirrored_artifact_resolve_against_its_url(tmp_path):
    put("memory://art/bundles/b", {"bundle.json": "{}"})
    local = local_folder("memory://art/bundles/b")
    assert resolve_from(local, "../../runs/r") == "memory://art/runs/r"
    assert resolve_from(tmp_path / "plain", "../r") == (tmp_path / "r").resolve()


def test_an_output_is_published_marker_last_and_a_failure_publishes_nothing(tmp_path):
    url = "memory://art/runs/r1"
    with pytest.raises(RuntimeError):
        with output_folder(url, marker="run.json") as staging:
            (staging / "run.json").write_text("{}")
            raise RuntimeError("the verb failed")
    assert not open_filesystem(url)[0].exists(open_filesystem(url)[1])
    with output_folder(url, marker="run.json") as again:
        assert again == staging and (again / "run.json").is_file()   # the rerun finds what it wrote
        (again / "a.txt").write_text("a")
    assert remote_names(url) == ["a.txt", "run.json"]


def test_an_output_rewritten_elsewhere_starts_from_the_stored_artifact_and_prunes_what_it_dropped(tmp_path,
                                                                                                   monkeypatch):
    url = "memory://art/ds"
    put(url, {"manifest.json": "{}", "shard-00000.tar": "old", "catalog.parquet": "c"})
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "other-machine"))
    with output_folder(url, marker="manifest.json") as staging:
        assert (staging / "shard-00000.tar").read_text() == "old"
        (staging / "shard-00000.tar").unlink()
        (staging / "shard-00001.tar").write_text("new")
    assert remote_names(url) == ["catalog.parquet", "manifest.json", "shard-00001.tar"]


def test_artifacts_round_trip_through_a_real_s3_api(tmp_path):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.s3server import environ, moto_s3, s3_env

    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        fs, _ = open_filesystem("s3://art")
        fs.mkdir("art")
        with output_folder("s3://art/bundles/b", marker="bundle.json") as staging:
            (staging / "bundle.json").write_text('{"backbone": "../../runs/r"}')
            (staging / "heads").mkdir()
            (staging / "heads" / "head.json").write_text("{}")
        local = local_folder("s3://art/bundles/b", marker="bundle.json")
        assert (local / "heads" / "head.json").read_text() == "{}"
        assert resolve_from(local, "../../runs/r") == "s3://art/runs/r"


def test_a_staging_folder_knows_where_it_goes_and_urls_relate_within_one_store():
    with output_folder("memory://art/bundles/c", marker="bundle.json") as staging:
        assert mirror_origin(staging) == "memory://art/bundles/c"
        (staging / "bundle.json").write_text("{}")
    assert "memory://art/bundles/c/.target.json" not in remote_names("memory://art/bundles/c")
    assert relative_url("s3://b/runs/r", "s3://b/bundles/x") == "../../runs/r"
    assert relative_url("s3://other/runs/r", "s3://b/bundles/x") is None
    assert relative_url("gs://b/runs/r", "s3://b/bundles/x") is None


def test_a_tree_of_artifacts_syncs_back_only_what_changed_records_last(tmp_path):
    from tagsight.storage import publish_folder

    url = "memory://art/root"
    put(url, {"a/manifest.json": "v1", "a/shard-0.tar": "x", "b/manifest.json": "w1", "b/shard-0.tar": "y"})
    local = mirror_folder(url, target=tmp_path / "root")
    (local / "a" / "shard-0.tar").unlink()
    (local / "a" / "shard-1.tar").write_text("x2")
    (local / "a" / "manifest.json").write_text("v2")
    assert publish_folder(local, url, last=("manifest.json",), prune=True) == 2
    assert remote_names(url) == ["a/manifest.json", "a/shard-1.tar", "b/manifest.json", "b/shard-0.tar"]
    fs, inner = open_filesystem(url)
    assert fs.cat_file(f"{inner}/a/manifest.json") == b"v2" and fs.cat_file(f"{inner}/b/manifest.json") == b"w1"
