"""``tagsight forget`` end to end: what it prints, idempotence, --rewrite, opt-out files, errors."""

from __future__ import annotations

import json

from tagsight import cli
from tagsight.data.index import SampleIndex
from tagsight.schema import catalog
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source


def test_forget_cli_is_idempotent_and_lists_runs_to_retrain(tmp_path, mixed_source, capsys):
    path, _ = mixed_source
    ds = tmp_path / "root" / "ds"
    ingest(open_source(path, "jsonl", name="feed"), ds, cfg=IngestConfig(workers=1))
    run = tmp_path / "root" / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {"path": str(ds), "manifest_version":
                                                                              catalog.manifest_version(ds)}}))
    before = len(SampleIndex.build(ds))
    args = ["forget", "--author", "ann", "--root", str(tmp_path / "root"), "--cache-dir", str(tmp_path / "none")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "tombstones added: 1" in out and "left out by the loader" in out and "retrain needed" in out
    assert str(run) in out.split("retrain needed (lineage")[1]
    assert len(SampleIndex.build(ds)) < before
    assert cli.main(args + ["--rewrite"]) == 0
    assert "rewritten as version" in capsys.readouterr().out
    assert cli.main(args + ["--rewrite"]) == 0
    out = capsys.readouterr().out
    assert "tombstones added: 0" in out and "nothing new" in out
    optout = tmp_path / "optout.txt"
    optout.write_text("post:feed/ok1\n")
    assert cli.main(["forget", "--optout-file", str(optout), "--root", str(tmp_path / "root"),
                     "--cache-dir", str(tmp_path / "none")]) == 0
    assert "tombstones added: 1" in capsys.readouterr().out
    assert cli.main(["forget", "--root", str(tmp_path / "root")]) == 2
    assert "no_forget_request" in capsys.readouterr().err
    assert cli.main(["forget", "--author", "x", "--root", str(tmp_path / "empty")]) == 2
    assert "no_dataset" in capsys.readouterr().err
