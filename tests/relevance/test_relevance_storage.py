"""``relevance score|filter|truth|report`` with every folder and file at an fsspec URL (``memory://``: the code path of
``s3://`` without a server): the scores folder published ``scores.json`` last and read through a mirror, the dataset
its record names at a URL mirrored for the filter, the truth file read through fsspec; a scores folder whose
``scores.json`` never arrived is not taken for one."""

from __future__ import annotations

import json

import pytest

from tagsight.cli import main
from tagsight.storage import exists, open_filesystem, read_bytes
from tests.s3server import put_folder


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def test_scores_filter_truth_and_report_on_a_store(colour_dataset, tmp_path, capsys):
    store = f"memory://relevance-{tmp_path.name}"
    put_folder(colour_dataset["dataset"], f"{store}/data/ds")
    put_folder(colour_dataset["vocab_path"], f"{store}/vocab")
    fs, inner = open_filesystem(f"{store}/truth.jsonl")
    fs.pipe_file(inner, colour_dataset["truth"].read_bytes())
    scores = f"{store}/scores"
    assert main(["-q", "relevance", "score", f"{store}/data/ds", "--vocab", f"{store}/vocab", "--out", scores,
                 "--backbone", "timm:resnet18", "--img-size", "32", "--folds", "2", "--epochs", "3",
                 "--cache-dir", str(tmp_path / "features"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == scores
    meta = json.loads(read_bytes(f"{scores}/scores.json"))
    assert meta["dataset"]["path"] == f"{store}/data/ds" and meta["vocab"]["path"] == f"{store}/vocab"
    assert exists(f"{scores}/pairs.parquet") and exists(f"{scores}/labels.json")

    assert main(["-q", "relevance", "filter", scores, "--select", "pairs", "--threshold", "0.4",
                 "--out", f"{store}/data/filtered"]) == 0   # the dataset as the scores name it, a URL, mirrored
    manifest = json.loads(read_bytes(f"{store}/data/filtered/manifest.json"))
    assert manifest["parent"]["path"] == f"{store}/data/ds"
    assert manifest["counts"]["pairs_in"] == manifest["counts"]["pairs_kept"] + manifest["counts"]["pairs_dropped"]

    fs, inner = open_filesystem(f"{store}/data/filtered/manifest.json")
    fs.rm(inner)                                                     # a publish cut off before its manifest
    assert not exists(f"{store}/data/filtered/manifest.json")
    assert main(["-q", "relevance", "filter", scores, "--select", "pairs", "--threshold", "0.4",
                 "--out", f"{store}/data/filtered"]) == 0   # the same command again: the finished version published
    assert json.loads(read_bytes(f"{store}/data/filtered/manifest.json")) == manifest

    capsys.readouterr()
    assert main(["-q", "relevance", "truth", scores, "--truth", f"{store}/truth.jsonl", "--thresholds", "0.4"]) == 0
    assert "flagging wrong + non-visual pairs: AP" in capsys.readouterr().out
    result = json.loads(read_bytes(f"{scores}/truth.json"))       # beside the scores, on the store
    assert [r["threshold"] for r in result["at_thresholds"]] == [0.4]

    assert main(["-q", "relevance", "report", scores, "--truth", f"{store}/truth.jsonl", "--threshold", "0.4",
                 "--out", f"{store}/pages/relevance.html"]) == 0
    page = read_bytes(f"{store}/pages/relevance.html").decode()
    assert f"scores {scores}" in page and "Flagging wrong" in page


def test_a_scores_folder_without_its_record_is_refused_and_a_missing_truth_named(colour_dataset, tmp_path, capsys):
    store = f"memory://relevance-half-{tmp_path.name}"
    half = f"{store}/scores"
    fs, inner = open_filesystem(half)
    fs.pipe_file(f"{inner}/pairs.parquet", b"PAR1")     # an upload cut off before scores.json
    fs.pipe_file(f"{inner}/labels.json", b"[]")
    for verb in (["filter", half, "--select", "pairs", "--threshold", "0.4", "--out", str(tmp_path / "f")],
                 ["truth", half, "--truth", str(colour_dataset["truth"])],
                 ["report", half, "--out", str(tmp_path / "r.html")]):
        with pytest.raises(SystemExit) as stop:
            main(["-q", "relevance", *verb])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "artifact_incomplete" in err and half in err
    assert not (tmp_path / "f").exists() and not (tmp_path / "r.html").exists()
