"""Data and model cards: every count comes from the records and reconciles; no forgotten id is printed."""

from __future__ import annotations

import json
from pathlib import Path

from tagsight import cli
from tagsight.schema import catalog
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.privacy.cards import consent_basis, data_card, model_card
import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.privacy.forget import forget, requests_from
from tagsight.privacy.policy import ConsentPolicy
from tagsight.report.cards import add_card_section
from tagsight.report.html import Report


def dataset(tmp_path: Path, mixed_source) -> Path:
    path, _ = mixed_source
    ds = tmp_path / "root" / "ds"
    policy = ConsentPolicy(optout_files=(str(path.parent / "optout.txt"),))
    ingest(open_source(path, "jsonl", name="feed"), ds, policy, IngestConfig(workers=1))
    return ds


def table_of(card, section_title: str, header: str) -> list[list]:
    section = next(s for s in card.sections if s.title.startswith(section_title))
    return next(b[2] for b in section.blocks if b[0] == "table" and b[1][0] == header)


def test_data_card_counts_reconcile_with_the_catalog(tmp_path, mixed_source):
    ds = dataset(tmp_path, mixed_source)
    card = data_card(ds)
    kept = catalog.read_table(ds, "posts").num_rows
    for header in ("consent basis", "visibility", "region", "licence"):
        assert sum(r[1] for r in table_of(card, "Kept posts", header)) == kept
    decisions = catalog.read_table(ds, "decisions").to_pylist()
    reasons = table_of(card, "Exclusions", "stage")
    assert sum(r[2] for r in reasons) == sum(d["status"] == "rejected" for d in decisions)
    assert ["policy", "author_opted_out", 1] in reasons and ["policy", "visibility_private", 1] in reasons
    dups = table_of(card, "De-duplication", "duplicate kind")
    assert sum(r[1] for r in dups) == catalog.read_table(ds, "duplicates").num_rows == 3  # repost, near, multi
    md = card.markdown()
    assert md.startswith(f"# Data card: ds (version {catalog.manifest_version(ds)})") and "no record" in md


def test_data_card_after_forget_counts_but_never_names_the_person(tmp_path, mixed_source):
    ds = dataset(tmp_path, mixed_source)
    forget(requests_from(authors=["ann"], hashtags=["tbt"]), [ds.parent], rewrite=True)
    card = data_card(ds)
    md = card.markdown()
    assert "- by author: 1" in md and "- by hashtag: 1" in md
    assert "ann" not in md.split("## Forgetting")[1]
    reasons = {(r[0], r[1]): r[2] for r in table_of(card, "Exclusions", "stage")}
    kept_before = [d for d in catalog.read_table(ds, "decisions").to_pylist() if d["reason"] == "forgotten"]
    assert reasons[("forget", "forgotten")] == len(kept_before) > 0
    history = table_of(card, "Forgetting", "rewrite of version")
    assert len(history) == 1 and history[0][1] == len(kept_before)


def test_model_card_reads_lineage_recipe_evaluation_transfer_and_notice(tmp_path, mixed_source):
    ds = dataset(tmp_path, mixed_source)
    run = tmp_path / "root" / "run"
    (run / "transfer").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "objective": "hashtag", "backbone": "resnet18",
                                              "world_size": 1, "dataset": {"path": str(ds), "manifest_version":
                                              catalog.manifest_version(ds)}, "vocab": {"path": "v", "version": "vv",
                                              "labels": 7}}))
    (run / "config.yaml").write_text("seed: 3\nmodel:\n  name: resnet18\n")
    (run / "eval.json").write_text(json.dumps({"step": 40, "trained": {"mAP": 0.5, "precision@1": 0.6, "n_samples": 9},
                                               "untrained": {"mAP": 0.1, "precision@1": 0.2, "n_samples": 9}}))
    (run / "transfer" / "knn-imagenette.json").write_text(json.dumps(
        {"method": "knn", "val": {"path": "val"}, "metrics": {"top1": 0.7, "top5": 0.9}}))
    md = model_card(run).markdown()
    assert "- dataset version: " + catalog.manifest_version(ds) in md and "Trained on the current version" in md
    assert "seed: 3" in md and "| trained | 0.5000 | 0.6000 | 9 |" in md and "| knn-imagenette | knn | val | 0.7000 | 0.9000 |" in md
    assert "Retrain needed" not in md and "Started from weights trained elsewhere" not in md
    assert "- initialised from: random initialisation (not recorded" in md
    forget(requests_from(authors=["ann"]), [tmp_path / "root"], rewrite=True)
    md = model_card(run).markdown()
    assert "**Retrain needed**" in md and "an earlier version, since rewritten" in md


def test_model_card_of_a_run_started_from_imagenet_weights_says_they_escape_consent_and_forgetting(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "objective": "hashtag", "backbone": "efficientnet_lite0",
                                              "init": "efficientnet-lite0", "dataset": {}, "vocab": {}}))
    md = model_card(run).markdown()
    assert "- initialised from: ImageNet-1k EfficientNet-Lite0" in md
    assert "**Started from weights trained elsewhere**" in md and "cannot take their photos" in md


def test_cards_render_as_html_sections_and_through_the_cli(tmp_path, mixed_source, capsys):
    ds = dataset(tmp_path, mixed_source)
    html = add_card_section(Report("r"), ds).render()
    assert "Data card: ds" in html and "consent basis" in html
    assert cli.main(["card", str(ds), "--html", str(tmp_path / "card.html")]) == 0
    assert (ds / "CARD.md").read_text().startswith("# Data card") and (tmp_path / "card.html").is_file()
    assert cli.main(["card", str(tmp_path / "nothing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert consent_basis(True, False).startswith("explicit") and consent_basis(None, True).endswith("(opt-in mode)")
