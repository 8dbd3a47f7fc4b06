"""The run report: sections that appear only with their inputs, inline plots, the collapse warning, plug-ins."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from tagsight.metrics import classification_metrics
from tagsight.report import run as report_run
from tagsight.report.run import REPORT_SECTIONS, run_report, write_run_report

CLASSES = ["cat", "dog", "owl"]


def transfer_result(method: str, backbone: str, removed: int = 2) -> dict:
    labels = np.array([0, 0, 1, 1, 2, 2])
    scores = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    breakdown = classification_metrics(scores, labels, CLASSES)
    split = {"images": 10, "found": removed, "removed": removed, "exact": removed, "near": 0, "kept": 10 - removed}
    return {"method": method, "backbone": backbone, "model": "test_vit", "dataset_id": "tiny",
            "train": {"count": 8}, "val": {"count": 6},
            "metrics": {"top1": breakdown.pop("top1"), "top5": breakdown.pop("top5")}, **breakdown,
            "decontamination": {"enabled": True, "pool": {"dataset": "/pool"}, "train": split, "val": split}}


def fake_run(root: Path, collapsed: bool | None = None) -> Path:
    root.mkdir(parents=True)
    rows = [{"step": s, "epoch": 0, "loss": 3.0 / s, "lr": 0.1, "samples_per_s": 100.0 + s, "my_metric": s * 2}
            for s in range(1, 6)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ap = {f"label{i}.n.01": i / 40 for i in range(40)}
    ev = {"step": 5, "trained": {"mAP": 0.4, "precision@1": 0.5, "precision@5": 0.2, "recall@5": 0.6,
                                 "n_samples": 20, "n_labels_scored": 40, "per_label_ap": ap},
          "untrained": {"mAP": 0.1, "precision@1": 0.0, "precision@5": 0.05, "recall@5": 0.1}}
    if collapsed is not None:
        ev["collapse"] = {"collapsed": collapsed, "reason": "all embeddings within 1e-6 of each other"}
    (root / "eval.json").write_text(json.dumps(ev))
    (root / "run.json").write_text(json.dumps({"kind": "pretrain", "objective": "hashtag",
                                               "dataset": {"path": str(root / "missing-dataset")}}))
    (root / "transfer").mkdir()
    (root / "transfer" / "knn-tiny.json").write_text(json.dumps(transfer_result("knn", str(root))))
    return root


def images_of(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(m))) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_every_section_with_inline_plots(tmp_path, monkeypatch):
    seen = {}
    original = report_run.small_multiples
    monkeypatch.setattr(report_run, "small_multiples", lambda series, *a, **k: seen.update(series) or original(series, *a, **k))
    run = fake_run(tmp_path / "a")
    page = run_report([run]).render()
    for title in ("Transfer", "a: Run", "a: Training curves", "a: Held-out hashtag prediction", "a: Transfer: knn on tiny"):
        assert f"<h2>{title}</h2>" in page
    assert list(seen)[:3] == ["loss", "lr", "samples_per_s"] and "my_metric" in seen and "epoch" not in seen
    pngs = images_of(page)
    assert len(pngs) == 6  # curves, hashtag bars, best AP, worst AP, per-class accuracy, confusion
    assert all(np.asarray(p.convert("L")).std() > 5 for p in pngs)  # drawn, not blank
    assert "Sample predictions" not in page  # its dataset is missing: the section leaves itself out
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:)', page)


def test_transfer_table_spans_all_runs(tmp_path):
    a, b = fake_run(tmp_path / "a"), fake_run(tmp_path / "b")
    (b / "finetune.json").write_text(json.dumps(transfer_result("finetune", "timm:test_vit", removed=0)))
    page = run_report([a, b]).render()
    table = page.split("<h2>Transfer</h2>")[1].split("</table>")[0]
    assert table.count("<tr>") == 4  # header + a/knn + b/knn + b/finetune
    assert "66.67" in table and "2 / 2" in table and "finetune" in table


def test_collapse_warning_is_visible(tmp_path):
    page = run_report([fake_run(tmp_path / "bad", collapsed=True)]).render()
    assert 'class="warning">Representation collapse: all embeddings' in page
    ok = run_report([fake_run(tmp_path / "ok", collapsed=False)]).render()
    assert 'class="warning"' not in ok and "No collapse detected" in ok


def test_an_empty_run_folder_gives_a_page_without_sections(tmp_path):
    (tmp_path / "empty").mkdir()
    page = run_report([tmp_path / "empty"]).render()
    assert "<section>" not in page and "<h1>tagsight report</h1>" in page


def test_a_plugged_in_section_appears_without_touching_run_py(tmp_path):
    @REPORT_SECTIONS.register("test_relevance")
    def relevance(report, run_dir):
        if (run_dir / "relevance.json").is_file():
            report.section("Relevance").paragraph(json.loads((run_dir / "relevance.json").read_text())["note"])

    try:
        run = fake_run(tmp_path / "a")
        assert "Relevance" not in run_report([run]).render()
        (run / "relevance.json").write_text(json.dumps({"note": "kept 70% of pairs"}))
        assert "kept 70% of pairs" in run_report([run]).render()
    finally:
        REPORT_SECTIONS._items.pop("test_relevance")


def test_sample_grid_predicts_held_out_posts_and_honours_tombstones(tmp_path):
    import torch

    from tagsight.data.index import SampleIndex
    from tagsight.datasets.synthetic import FeedConfig, generate_feed
    from tagsight.schema.catalog import iter_kept_hashtags, manifest_version
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source
    from tagsight.privacy.tombstones import Tombstone, add_tombstones
    from tagsight.tags.config import VocabConfig
    from tagsight.tags.vocab import build_vocab
    from tagsight.train.checkpoint import save_checkpoint
    from tagsight.train.config import PretrainConfig
    from tagsight.train.pretrain import build_objective

    generate_feed(tmp_path / "feed", FeedConfig(n_posts=60, n_authors=6, image_size=32, n_large=0, seed=2))
    ds = tmp_path / "ds"
    ingest(open_source(tmp_path / "feed" / "posts.jsonl", "jsonl"), ds,
           cfg=IngestConfig(workers=1, image=ImageConfig(max_side=32)))
    vocab = build_vocab(iter_kept_hashtags(ds), VocabConfig(min_count=2), source={"manifest_version": manifest_version(ds)})
    vocab_path = vocab.save(tmp_path / "vocab")
    cfg = PretrainConfig.from_dict({"model": {"name": "test_vit", "img_size": 32}, "data": {"holdout_fraction": 0.3}})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(cfg.to_yaml())
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "objective": "hashtag", "dataset": {"path": str(ds)},
                                              "vocab": {"path": str(vocab_path)}}))
    objective = build_objective(cfg, len(vocab))
    save_checkpoint(run, 1, objective, torch.optim.SGD(objective.parameters(), lr=0.1), {"epoch": 0, "batches_done": 0})
    index = SampleIndex.build(ds)
    held = np.flatnonzero(index.holdout(0.3, 0))
    add_tombstones(ds, [Tombstone(kind="post", value=index.post_keys[held[0]], reason="test")])
    forgotten = sum(k == index.post_keys[held[0]] for k in index.post_keys)
    images, captions, skipped = report_run._held_out_predictions(run, 4)
    assert skipped == forgotten and len(images) == 4
    shown = SampleIndex.build(ds)
    assert index.post_keys[held[0]] not in shown.post_keys
    first = shown.read_meta(int(np.flatnonzero(shown.holdout(0.3, 0))[0]))
    assert captions[0].startswith("pred: ") and all(f"#{t}" in captions[0] for t in first["hashtags"][:6])
    page = write_run_report([run], tmp_path / "r.html").read_text()
    assert "Sample predictions" in page and "asked to be forgotten" in page and len(images_of(page)) == 1
