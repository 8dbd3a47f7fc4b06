"""Lineage: every artifact names its parents; chains resolve through rewrites; --post lists every holder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.torch import save_file
import torch

from tagsight import cli
from tagsight.fsio import ReasonError
from tagsight.schema import catalog
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.lineage import FEATURE_META_KEY, Ref, chain, format_chain, iter_artifacts, read_artifact, write_lineage
import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.privacy.forget import forget, requests_from
from tagsight.privacy.trace import artifacts_with_post


def make_world(tmp_path: Path, mixed_source) -> dict:
    """dataset -> vocab (names it by version only) -> run -> similar-image index (lineage.json + contents)."""
    path, _ = mixed_source
    root = tmp_path / "root"
    ds = root / "data" / "mine"
    ingest(open_source(path, "jsonl", name="feed"), ds, cfg=IngestConfig(workers=1))
    version = catalog.manifest_version(ds)
    vocab = root / "vocab"
    vocab.mkdir(parents=True)
    (vocab / "vocab.json").write_text(json.dumps({"format": "tagsight-vocab", "version": "v0c4b",
                                                  "input": {"kind": "dataset", "manifest_version": version}}))
    run = root / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step-00000010.safetensors").write_bytes(b"")
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "backbone": "resnet18",
                                              "dataset": {"path": str(ds), "manifest_version": version},
                                              "vocab": {"path": str(vocab), "version": "v0c4b", "labels": 3}}))
    keys = [f"feed/{p}" for p in catalog.read_table(ds, "posts", ["post_id"]).column("post_id").to_pylist()]
    index = root / "index"
    index.mkdir()
    pq.write_table(pa.table({"post_key": keys}), index / "items.parquet")
    write_lineage(index, "index", "i1", [Ref("run", str(run), f"{version}+v0c4b")], contents="items.parquet")
    return {"root": root, "ds": ds, "vocab": vocab, "run": run, "index": index, "version": version, "keys": keys}


def test_each_record_kind_is_read_with_its_parents(tmp_path, mixed_source):
    w = make_world(tmp_path, mixed_source)
    ds = read_artifact(w["ds"])
    assert ds.kind == "dataset" and ds.version == w["version"] and ds.parents[0].kind == "source"
    assert read_artifact(w["vocab"] / "vocab.json").parents == (Ref("dataset", None, w["version"]),)
    run = read_artifact(w["run"])
    assert [p.kind for p in run.parents] == ["dataset", "vocab"] and run.extra["checkpoints"][0].endswith("10.safetensors")
    index = read_artifact(w["index"])
    assert index.kind == "index" and index.post_keys == frozenset(w["keys"])
    kinds = sorted(a.kind for a in iter_artifacts(w["root"]))
    assert kinds == ["dataset", "index", "run", "vocab"]   # checkpoints are not artifacts of their own


def test_chain_resolves_path_less_parents_by_version(tmp_path, mixed_source):
    w = make_world(tmp_path, mixed_source)
    known = list(iter_artifacts(w["root"]))
    steps = chain(read_artifact(w["index"]), known)
    assert [(d, ref.kind) for d, ref, _ in steps] == [(1, "run"), (2, "dataset"), (3, "source"), (2, "vocab"),
                                                       (3, "dataset"), (4, "source")]
    vocab_parent = steps[4][2]
    assert vocab_parent is not None and vocab_parent.path == w["ds"]   # found by version
    text = format_chain(read_artifact(w["run"]), known)
    assert text.splitlines()[0].startswith(f"run {w['run']}") and "checkpoints: step-00000010.safetensors" in text
    assert "[not found]" not in text


def test_a_run_on_a_rewritten_version_still_resolves_and_lists_the_post(tmp_path, mixed_source):
    w = make_world(tmp_path, mixed_source)
    forget(requests_from(posts=["feed/ok2"]), [w["root"]], rewrite=True)
    assert catalog.manifest_version(w["ds"]) != w["version"]
    run = read_artifact(w["run"])
    found = chain(run, list(iter_artifacts(w["root"])))[0][2]
    assert found is not None and w["version"] in found.versions
    holders = {(a.kind, how) for a, how in artifacts_with_post("ok2", [w["root"]])}
    assert holders == {("run", "trained on / made from"), ("vocab", "trained on / made from"),
                       ("index", "contains")}
    # a post never trained on is held by the current dataset and everything made from it
    assert {a.kind for a, _ in artifacts_with_post("feed/ok1", [w["root"]])} == {"dataset", "run", "vocab", "index"}
    assert artifacts_with_post("feed/nonexistent", [w["root"]]) == []


def test_feature_files_carry_their_lineage(tmp_path):
    path = tmp_path / "f.safetensors"
    record = {"parents": [{"kind": "dataset", "path": "/d", "version": "v1"}], "post_keys": ["s/p1"]}
    save_file({"features": torch.zeros(1, 2)}, str(path), metadata={FEATURE_META_KEY: json.dumps(record)})
    a = read_artifact(path)
    assert a.kind == "features" and a.post_keys == {"s/p1"} and a.parents == (Ref("dataset", "/d", "v1"),)
    with pytest.raises(ReasonError) as err:
        read_artifact(tmp_path)
    assert err.value.reason == "not_an_artifact"
    with pytest.raises(ValueError):
        write_lineage(tmp_path, "index", "", [])


def test_lineage_cli_prints_the_chain_and_the_holders(tmp_path, mixed_source, capsys):
    w = make_world(tmp_path, mixed_source)
    assert cli.main(["lineage", str(w["index"]), "--root", str(w["root"])]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"index {w['index']} version i1" and f"<- dataset {w['ds']} version {w['version']}" in out
    assert cli.main(["lineage", "--post", "feed/ok1", "--root", str(w["root"])]) == 0
    out = capsys.readouterr().out
    assert "4 artifact(s)" in out and f"dataset   {w['ds']}  (contains" in out
    assert cli.main(["lineage"]) == 2
    assert cli.main(["lineage", str(tmp_path / "nothing")]) == 2
    assert "not_an_artifact" in capsys.readouterr().err


def _derive_half(parent: Path, out: Path, kind: str) -> None:
    from tagsight.data.derive import Drop, Keep, derive_dataset

    derive_dataset(parent, out, lambda i, meta: Keep() if i % 2 == 0 else Drop("test_half"), kind=kind)


def test_a_derived_dataset_names_its_parent_folder_and_keeps_it_after_a_forget(tmp_path, mixed_source):
    w = make_world(tmp_path, mixed_source)
    derived = w["root"] / "data" / "curated"
    _derive_half(w["ds"], derived, "curate_filter")
    art = read_artifact(derived)
    assert art.parents[0] == Ref("dataset", str(w["ds"].resolve()), w["version"])
    text = format_chain(art, list(iter_artifacts(w["root"])))
    assert f"<- dataset {w['ds'].resolve()} version {w['version']}" in text
    assert "forget" not in text and "[not found]" not in text
    before = art.version
    kept = [k for k in SampleIndex_keys(derived)]
    post = kept[0]
    forget(requests_from(posts=[post]), [derived], rewrite=True)
    after = read_artifact(derived)
    assert after.version != before and before in after.history
    assert after.parents[0] == Ref("dataset", str(w["ds"].resolve()), w["version"])   # still the folder it came from
    assert after.parents[1] == Ref("dataset", str(derived), before)                    # and its own earlier version
    text = format_chain(after, list(iter_artifacts(w["root"])))
    assert f"<- dataset {w['ds'].resolve()} version {w['version']}" in text
    assert f"version {before} (an earlier version: the folder is now at {after.version}, rewritten by forget)" in text


def SampleIndex_keys(ds: Path) -> list[str]:
    from tagsight.data.index import SampleIndex

    return sorted(set(SampleIndex.build(ds).post_keys))


def test_run_json_paths_resolve_against_the_run_not_the_callers_directory(tmp_path, mixed_source, monkeypatch):
    """Older runs recorded paths relative to where the command ran; card and lineage still find them."""
    from tagsight.privacy.cards import model_card

    w = make_world(tmp_path, mixed_source)
    record = json.loads((w["run"] / "run.json").read_text())
    record["dataset"]["path"] = "data/mine"            # as written by a command run in the root
    record["vocab"]["path"] = "vocab"
    (w["run"] / "run.json").write_text(json.dumps(record))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    card = model_card(w["run"]).markdown()
    assert "not there any more" not in card and "Trained on the current version" in card
    run = read_artifact(w["run"])
    assert run.parents[0].path == str(w["ds"].resolve()) and run.parents[1].path == str(w["vocab"].resolve())
    assert cli.main(["card", str(w["run"]), "--out", str(elsewhere / "CARD.md")]) == 0
    assert "Trained on the current version" in (elsewhere / "CARD.md").read_text()


def test_lineage_accepts_a_bundle(tmp_path, mixed_source, capsys):
    w = make_world(tmp_path, mixed_source)
    bundle = w["root"] / "bundles" / "b"
    bundle.mkdir(parents=True)
    (bundle / "bundle.json").write_text(json.dumps({"backbone": "../../runs/r1"}))
    art = read_artifact(bundle)
    assert art.kind == "bundle" and art.parents == (Ref("run", str(w["run"].resolve()), None),)
    assert cli.main(["lineage", str(bundle), "--root", str(w["root"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"bundle {bundle} version ") and f"<- run {w['run'].resolve()}" in out
    assert f"<- dataset {w['ds']}" in out and "[not found]" not in out
    assert "bundle" in {a.kind for a in iter_artifacts(w["root"])}
    assert ("bundle", "trained on / made from") in {(a.kind, how) for a, how in artifacts_with_post("feed/ok1", [w["root"]])}
    report = forget(requests_from(posts=["feed/ok1"]), [w["root"]])   # a bundle made from the post gets a notice
    assert [r.kind for r in report.results if r.path == str(bundle) and r.affected] == ["derived"]
    assert (bundle / "forget_notice.json").is_file()
    (bundle / "bundle.json").write_text(json.dumps({"backbone": "timm:resnet18"}))
    assert read_artifact(bundle).parents == (Ref("source", "timm:resnet18", "backbone"),)


def test_a_record_that_is_not_a_json_object_is_unreadable(tmp_path):
    (tmp_path / "lineage.json").write_text("[]")
    with pytest.raises(ReasonError) as err:
        read_artifact(tmp_path)
    assert err.value.reason == "lineage_unreadable" and "not a JSON object" in str(err.value)


def world_on_store(tmp_path: Path, mixed_source, url: str) -> dict:
    """``make_world`` with its run naming the dataset by URL and a bundle beside the run, copied to ``url``."""
    from tests.s3server import put_folder

    w = make_world(tmp_path, mixed_source)
    run = json.loads((w["run"] / "run.json").read_text())
    run["dataset"]["path"] = f"{url}/data/mine"
    (w["run"] / "run.json").write_text(json.dumps(run))
    write_lineage(w["index"], "index", "i1", [Ref("run", f"{url}/runs/r1", None)], contents="items.parquet")
    (w["root"] / "bundles" / "b").mkdir(parents=True)
    (w["root"] / "bundles" / "b" / "bundle.json").write_text(json.dumps({"backbone": "../../runs/r1"}))
    put_folder(w["root"], url)
    return w


def test_lineage_reads_artifacts_on_object_storage_by_their_urls(tmp_path, mixed_source, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    url = "memory://lineage-world/root"
    w = world_on_store(tmp_path, mixed_source, url)
    bundle = read_artifact(f"{url}/bundles/b")
    assert bundle.location == f"{url}/bundles/b" and bundle.parents == (Ref("run", f"{url}/runs/r1", None),)
    text = format_chain(bundle, list(iter_artifacts(url)))
    assert text.startswith(f"bundle {url}/bundles/b version ") and f"<- run {url}/runs/r1" in text
    assert f"<- dataset {url}/data/mine version {w['version']}" in text and "[not found]" not in text
    assert {a.kind for a in iter_artifacts(url)} >= {"dataset", "vocab", "run", "index", "bundle"}
    assert not list((tmp_path / "cache").rglob("*.tar"))    # records only: no shard was fetched


def test_an_unreadable_record_is_skipped_when_walking_a_root(tmp_path, mixed_source):
    w = make_world(tmp_path, mixed_source)
    (w["root"] / "odd").mkdir()
    (w["root"] / "odd" / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {}}))
    assert {a.kind for a in iter_artifacts(w["root"])} >= {"dataset", "vocab", "run", "index"}
