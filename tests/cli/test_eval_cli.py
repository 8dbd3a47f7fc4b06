"""CLI: eval with a run backbone (default decontamination, RUN/transfer result), eval decontaminate, report."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tagsight import cli
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.train.checkpoint import save_checkpoint
from tagsight.train.config import PretrainConfig
from tagsight.train.pretrain import build_objective


@pytest.fixture
def setup(tmp_path, class_folders):
    """Class folders, a pool holding one train and one val image, and a run (test_vit 32) trained on that pool."""
    train, val = class_folders(tmp_path / "data" / "train", 3, seed=0), class_folders(tmp_path / "data" / "val", 2, seed=1)
    (tmp_path / "poolsrc").mkdir()
    shutil.copy(train / "cat" / "0.jpg", tmp_path / "poolsrc" / "a.jpg")
    shutil.copy(val / "dog" / "1.jpg", tmp_path / "poolsrc" / "b.jpg")
    ingest(open_source(tmp_path / "poolsrc", "folder"), tmp_path / "pool",
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=32)))
    cfg = PretrainConfig.from_dict({"model": {"name": "test_vit", "img_size": 32}})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(cfg.to_yaml())
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {"path": str(tmp_path / "pool")}}))
    objective = build_objective(cfg, 5)
    save_checkpoint(run, 1, objective, torch.optim.SGD(objective.parameters(), lr=0.1), {"epoch": 0, "batches_done": 0})
    return train, val, tmp_path / "pool", run


def test_knn_on_a_run_decontaminates_by_default_and_saves_in_the_run(setup, tmp_path, capsys):
    train, val, pool, run = setup
    argv = ["eval", "knn", str(run), "--train", str(train), "--val", str(val), "--k", "3", "--workers", "0",
            "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "train in pool  1 of 9 (1 exact, 0 near; 0 unchecked), 0 removed" in out
    assert "val in pool    1 of 6 (1 exact, 0 near; 0 unchecked), 1 removed" in out
    result = json.loads((run / "transfer" / "knn-data.json").read_text())
    assert result["train"]["count"] == 9 and result["val"]["count"] == 5
    assert result["decontamination"]["val"]["matches"][0]["image"] == "dog/1.jpg"
    assert sum(map(sum, result["confusion"])) == 5 and set(result["per_class"]) == {"cat", "dog", "owl"}
    assert cli.main([*argv, "--no-decontaminate", "--dataset-id", "plain", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)        # --json: the result record, nothing else on stdout
    plain = json.loads((run / "transfer" / "knn-plain.json").read_text())
    assert plain["val"]["count"] == 6 and plain["decontamination"] == {"enabled": False}
    assert printed["metrics"] == plain["metrics"] and printed["saved"] == [str(run / "transfer" / "knn-plain.json")]


def test_eval_decontaminate_only_counts(setup, tmp_path, capsys):
    train, val, pool, _ = setup
    out = tmp_path / "d.json"
    assert cli.main(["eval", "decontaminate", "--pool", str(pool), "--train", str(train), "--val", str(val),
                     "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]) == 0
    assert "val in pool    1 of 6" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert (report["train"]["found"], report["val"]["found"], report["pool"]["hashed_media"]) == (1, 1, 2)
    assert cli.main(["eval", "decontaminate", "--pool", str(pool), "--train", str(train), "--val", str(val),
                     "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["val"]["found"] == 1


def test_finetune_needs_a_run_dir_for_a_non_run_backbone(setup, capsys):
    train, val, _, _ = setup
    assert cli.main(["eval", "finetune", "timm:test_vit", "--train", str(train), "--val", str(val)]) == 2
    assert "missing_run_dir" in capsys.readouterr().err


def test_report_cli_writes_one_html_file(setup, tmp_path, capsys):
    train, val, _, run = setup
    assert cli.main(["eval", "knn", str(run), "--train", str(train), "--val", str(val), "--k", "3", "--workers", "0",
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    out = tmp_path / "report.html"
    assert cli.main(["report", str(run), "--out", str(out)]) == 0
    page = out.read_text()
    assert "<h2>Transfer</h2>" in page and "Rows: true class" in page and page.count("data:image/png;base64,") == 2
    assert cli.main(["report", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "missing_run" in capsys.readouterr().err
