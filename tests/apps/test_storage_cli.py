"""A project on object storage through the CLI, as docs/storage.md shows it: vocabulary, calibration, predict,
export, lineage, card, forget and its audit, every path an fsspec URL (``memory://``: the same code path as s3)."""

import json

import pytest
from PIL import Image

from tagsight.cli import main
from tagsight.storage import exists, read_bytes
from tests.s3server import put_folder


@pytest.fixture
def project(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    dataset, _, run = tiny_run
    url = f"memory://project-{tmp_path.name}"
    put_folder(dataset, f"{url}/data/ds")
    put_folder(run, f"{url}/runs/r")
    return url


def cli(capsys, *args, code=0):
    assert main(["-q", *args, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_a_project_on_object_storage_end_to_end(project, tmp_path, capsys):
    url = project
    vocab = cli(capsys, "vocab", "build", f"{url}/data/ds", "--out", f"{url}/vocab")
    assert vocab["labels"] > 0 and exists(f"{url}/vocab/vocab.json")
    cli(capsys, "apps", "calibrate", f"{url}/runs/r", "--out", f"{url}/bundles/b", "--target-precision", "0.3",
        "--min-support", "1", "--z", "0", "--rendered-unseen", "0")
    assert json.loads(read_bytes(f"{url}/bundles/b/bundle.json"))["backbone"] == "../../runs/r"
    assert exists(f"{url}/bundles/b/calibration.json")
    Image.new("RGB", (40, 40), (200, 40, 40)).save(tmp_path / "a.jpg")
    assert main(["-q", "predict", f"{url}/bundles/b", str(tmp_path / "a.jpg"), "--app", "hashtags",
                 "--out", str(tmp_path / "p.jsonl")]) == 0
    assert json.loads((tmp_path / "p.jsonl").read_text())["app"] == "hashtags"
    cli(capsys, "export", f"{url}/bundles/b", "--out", f"{url}/exports/e")
    chain = cli(capsys, "lineage", f"{url}/exports/e")
    text = json.dumps(chain)
    assert f"{url}/exports/e" in text and f"{url}/bundles/b" in text and f"{url}/runs/r" in text
    card = cli(capsys, "card", f"{url}/runs/r")
    assert card["out"] == f"{url}/runs/r/CARD.md" and read_bytes(card["out"]).startswith(b"# Model card: r")


def test_forget_rewrites_a_dataset_on_object_storage_and_the_audit_finds_nothing(project, tiny_run, tmp_path, capsys):
    url = project
    before = json.loads(read_bytes(f"{url}/data/ds/manifest.json"))["version"]
    from tagsight.schema import catalog

    first = catalog.read_table(tiny_run[0], "posts", ["source", "post_id"]).to_pylist()[0]
    post = f"{first['source']}/{first['post_id']}"
    features = str(tmp_path / "features")   # not the machine's shared feature cache
    report = cli(capsys, "forget", "--root", url, "--post", post, "--rewrite", "--cache-dir", features)
    assert report["changed"] >= 1
    after = json.loads(read_bytes(f"{url}/data/ds/manifest.json"))
    assert after["version"] != before
    from tagsight.storage import local_folder

    stored = catalog.read_table(local_folder(f"{url}/data/ds", marker="manifest.json"), "posts", ["post_id"])
    assert first["post_id"] not in stored.column("post_id").to_pylist()
    audit = cli(capsys, "forget", "--audit", url, "--cache-dir", features)
    assert audit["clean"] is True


def test_vocab_show_and_apps_show_read_from_object_storage_and_name_the_url(project, capsys):
    url = project
    built = cli(capsys, "vocab", "build", f"{url}/data/ds", "--out", f"{url}/vocab")
    shown = cli(capsys, "vocab", "show", f"{url}/vocab")
    assert shown["labels"] == built["labels"] and shown["version"] == built["version"]
    cli(capsys, "apps", "calibrate", f"{url}/runs/r", "--out", f"{url}/bundles/b", "--target-precision", "0.3",
        "--min-support", "1", "--z", "0", "--rendered-unseen", "0")
    described = cli(capsys, "apps", "show", f"{url}/bundles/b")
    assert described["bundle"] == f"{url}/bundles/b"   # the bundle by its URL, not the local copy
    assert "hashtags" in described["apps"]


def test_a_calibration_dataset_on_object_storage_is_read_from_there(project, capsys):
    url = project   # the run's own dataset, given by its URL: read from the store and refused as the same dataset
    assert main(["-q", "apps", "calibrate", f"{url}/runs/r", "--out", f"{url}/bundles/c", "--heldout-dataset",
                 f"{url}/data/ds", "--rendered-unseen", "0"]) == 2
    assert "same_dataset" in capsys.readouterr().err
    assert main(["-q", "apps", "calibrate", f"{url}/runs/r", "--out", f"{url}/bundles/c", "--heldout-dataset",
                 f"{url}/data/none", "--rendered-unseen", "0"]) == 2
    err = capsys.readouterr().err
    assert "same_dataset" not in err and "data/none" in err
    assert not exists(f"{url}/bundles/c/bundle.json")   # nothing published by a refused calibration


def test_report_figure_and_answer_files_may_be_urls(project, tmp_path, capsys):
    url = project
    cli(capsys, "vocab", "build", f"{url}/data/ds", "--out", f"{url}/vocab", "--report", f"{url}/pages/vocab.html")
    assert read_bytes(f"{url}/pages/vocab.html").startswith(b"<!DOCTYPE html>")
    cli(capsys, "apps", "calibrate", f"{url}/runs/r", "--out", f"{url}/bundles/b", "--target-precision", "0.3",
        "--min-support", "1", "--z", "0", "--rendered-unseen", "0", "--plot", f"{url}/pages/precision.png")
    assert read_bytes(f"{url}/pages/precision.png").startswith(b"\x89PNG")
    Image.new("RGB", (40, 40), (200, 40, 40)).save(tmp_path / "a.jpg")
    assert main(["-q", "predict", f"{url}/bundles/b", str(tmp_path / "a.jpg"), "--app", "hashtags",
                 "--out", f"{url}/answers/p.jsonl"]) == 0
    assert json.loads(read_bytes(f"{url}/answers/p.jsonl"))["app"] == "hashtags"
    card = cli(capsys, "card", f"{url}/runs/r", "--html", f"{url}/pages/card.html")
    assert card["html"] == f"{url}/pages/card.html" and b"Model card" in read_bytes(card["html"])
    assert not list(tmp_path.glob("memory:*"))          # nothing written to a local path named like the URL
