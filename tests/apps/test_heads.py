import json
import math
from pathlib import Path

import numpy as np
import pytest

from tagsight.apps.bundle import load_bundle
from tagsight.apps.embedder import Embedder
from tagsight.apps.heads import (CategorizeApp, HeadConfig, ModerateApp, abstain_threshold, load_head,
                                 moderation_decision, moderation_thresholds, safe_classes, train_head)
from tagsight.apps.run import load_run
from tagsight.apps.thresholds import operating_point
from tagsight.fsio import ReasonError

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def test_moderation_thresholds_meet_precision_and_recall_targets_on_constructed_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)  # 0 = safe, 1 = spam, 2 = gore
    logits = rng.normal(0, 1, (600, 3)) + 2.0 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    classes = ["safe", "spam", "gore"]
    t = moderation_thresholds(probs, labels, classes, ["safe"], target_precision=0.9, target_recall=0.95)
    assert set(t) == {"spam", "gore"}
    for c, name in ((1, "spam"), (2, "gore")):
        block = operating_point(probs[:, c], labels == c, t[name]["block"])
        review = operating_point(probs[:, c], labels == c, t[name]["review"])
        assert block.precision >= 0.9 and review.recall >= 0.95 and t[name]["review"] <= t[name]["block"]
        assert t[name]["val_block"]["precision"] == pytest.approx(block.precision, abs=1e-4)
    assert moderation_decision(np.array([0.9, 0.05, 0.05]), classes, t)["decision"] == "allow"
    hit = moderation_decision(np.array([0.0, 1.0, 0.0]), classes, t)
    assert hit["decision"] == "block" and hit["flags"][0]["category"] == "spam"
    middle = (t["gore"]["review"] + t["gore"]["block"]) / 2
    if t["gore"]["review"] < t["gore"]["block"]:
        assert moderation_decision(np.array([1 - middle, 0.0, middle]), classes, t)["decision"] == "review"


def test_unreachable_precision_never_blocks_automatically():
    probs = np.array([[0.5, 0.5]] * 10)
    labels = np.array([0, 1] * 5)
    t = moderation_thresholds(probs, labels, ["ok", "bad"], ["ok"], 0.99, 0.5)
    assert t["bad"]["block"] == math.inf and not t["bad"]["block_target_reached"]
    assert moderation_decision(np.array([0.0, 1.0]), ["ok", "bad"], t)["decision"] == "review"


def test_abstain_threshold_reaches_the_target_accuracy():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 500)
    logits = rng.normal(0, 1, (500, 4)) + 1.2 * np.eye(4)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    a = abstain_threshold(probs, labels, 0.9)
    answered = probs.max(1) >= a["threshold"]
    assert a["target_reached"] and (probs.argmax(1) == labels)[answered].mean() >= 0.9 and 0 < answered.mean() < 1


def test_safe_categories_are_required_for_moderation():
    assert safe_classes(["allow", "spam"], None) == ["allow"]
    with pytest.raises(ReasonError) as e:
        safe_classes(["a", "b"], None)
    assert e.value.reason == "no_safe_category"
    with pytest.raises(ReasonError):
        safe_classes(["a", "b"], ["c"])


@pytest.fixture(scope="module")
def run_parts(tiny_run):
    run = load_run(tiny_run[2])
    return run.backbone, str(tiny_run[2])


def test_categorize_head_trains_on_a_folder_and_abstains(run_parts, make_colour_folder, make_coloured, tmp_path):
    backbone, spec = run_parts
    data = make_colour_folder(tmp_path / "data", {**COLOURS, "ignored": (128, 128, 128)})
    cfg = HeadConfig(task="categorize", categories=("red", "green", "blue"), epochs=10, target_accuracy=0.8)
    meta = train_head(data, backbone, spec, tmp_path / "head", cfg)
    assert meta["classes"] == ["red", "green", "blue"] and meta["data"]["skipped_folders"] == {"ignored": 16}
    assert meta["training"]["fit_images"] + meta["training"]["val_images"] == 48
    head = load_head(tmp_path / "head")
    app = CategorizeApp(Embedder(backbone), head, "head")
    out = app.predict([make_coloured(COLOURS["red"], 99), make_coloured(COLOURS["blue"], 98)])
    assert [o["best_guess"] for o in out] == ["red", "blue"]
    assert all(o["abstained"] == (o["category"] is None) for o in out)
    assert app.predict([make_coloured(COLOURS["red"], 99)], threshold=1.01)[0]["abstained"]
    with pytest.raises(ReasonError) as e:
        train_head(data, backbone, spec, tmp_path / "h2", HeadConfig(task="categorize", categories=("red", "pink")))
    assert e.value.reason == "unknown_category"


def test_moderate_head_cli_and_bundle_answer_allow_review_block(run_parts, make_colour_folder, make_coloured,
                                                               tmp_path, capsys):
    from tagsight.apps.bundle import init_bundle
    from tagsight.cli import main

    _, spec = run_parts
    data = make_colour_folder(tmp_path / "data", {"safe": COLOURS["green"], "gore": COLOURS["red"],
                                                  "spam": COLOURS["blue"]})
    bundle = init_bundle(tmp_path / "bundle", spec)
    out = bundle / "heads" / "safety"
    capsys.readouterr()
    assert main(["-q", "heads", "train", "--task", "moderate", "--data", str(data), "--backbone", str(bundle),
                 "--out", str(out), "--epochs", "10", "--target-precision", "0.8",
                 "--cache-dir", str(tmp_path / "cache"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["safe"] == ["safe"] and set(summary["thresholds"]) == {"gore", "spam"}
    app = load_bundle(bundle).app("safety")   # the folder name, as predict --app safety asks
    assert isinstance(app, ModerateApp)
    answers = app.predict([make_coloured(COLOURS["green"], 7), make_coloured(COLOURS["red"], 8)])
    assert all(a["decision"] in ("allow", "review", "block") for a in answers)
    assert set(answers[0]["probabilities"]) == {"safe", "gore", "spam"}
    assert answers[1]["decision"] != "allow" or answers[1]["probabilities"]["gore"] < 0.5


def test_a_head_of_another_backbone_is_refused(run_parts, make_colour_folder, tmp_path):
    from tagsight.eval.backbones import load_backbone

    backbone, spec = run_parts
    data = make_colour_folder(tmp_path / "data", {"a": (0, 0, 0), "b": (255, 255, 255)}, per_class=4)
    train_head(data, backbone, spec, tmp_path / "head", HeadConfig(task="categorize", epochs=2))
    other = Embedder(load_backbone("timm:test_vit", 32, seed=3))
    with pytest.raises(ReasonError) as e:
        CategorizeApp(other, load_head(tmp_path / "head"))
    assert e.value.reason == "head_mismatch"


def _head(backbone, spec, data, out, task, **kw):
    return train_head(data, backbone, spec, out, HeadConfig(task=task, epochs=2, val_fraction=0.5, **kw))


def test_heads_are_served_by_their_task_whatever_the_folder_and_predict_agrees(run_parts, make_colour_folder,
                                                                                make_coloured, tmp_path):
    """The README layout (heads/products, heads/safety) serves /v1/categorize and /v1/moderate."""
    from fastapi.testclient import TestClient

    from tagsight.apps.bundle import init_bundle
    from tagsight.serve.app import create_app
    from tagsight.serve.loader import load_bundle_apps

    backbone, spec = run_parts
    data = make_colour_folder(tmp_path / "data", {"safe": COLOURS["green"], "spam": COLOURS["red"]}, per_class=4)
    bundle = init_bundle(tmp_path / "bundle", spec)
    _head(backbone, spec, data, bundle / "heads" / "products", "categorize")
    _head(backbone, spec, data, bundle / "heads" / "safety", "moderate")
    apps = load_bundle_apps(bundle, "cpu")
    assert {"categorize", "moderate"} <= set(apps) and apps["categorize"].head_name == "products"
    loaded = load_bundle(bundle)
    assert loaded.app("products") is loaded.apps["categorize"]        # the folder name still answers in predict
    jpeg = tmp_path / "x.jpg"
    make_coloured(COLOURS["red"], 3).save(jpeg)
    with TestClient(create_app(apps)) as c:
        r = c.post("/v1/categorize?threshold=0", content=jpeg.read_bytes(), headers={"content-type": "image/jpeg"})
        assert r.status_code == 200, r.text
        assert r.json()["result"]["threshold"] == 0 and r.json()["result"]["category"] is not None
        assert c.post("/v1/moderate", content=jpeg.read_bytes(),
                      headers={"content-type": "image/jpeg"}).json()["result"]["decision"] in ("allow", "review", "block")
        r = c.post("/v1/categorize?bogus=1", content=jpeg.read_bytes(), headers={"content-type": "image/jpeg"})
        assert r.status_code == 422 and r.json()["error"]["reason"] == "unknown_option"
        r = c.post("/v1/categorize?threshold=high", content=jpeg.read_bytes(), headers={"content-type": "image/jpeg"})
        assert r.status_code == 422 and r.json()["error"]["reason"] == "invalid_option"


def test_several_heads_of_one_task_are_served_under_their_folder_names(run_parts, make_colour_folder, tmp_path):
    from tagsight.apps.bundle import head_app_names, init_bundle

    backbone, spec = run_parts
    data = make_colour_folder(tmp_path / "data", {"red": COLOURS["red"], "blue": COLOURS["blue"]}, per_class=4)
    bundle = init_bundle(tmp_path / "bundle", spec)
    for name in ("products", "styles"):
        _head(backbone, spec, data, bundle / "heads" / name, "categorize")
    loaded = load_bundle(bundle)
    assert {"products", "styles"} <= set(loaded.apps) and "categorize" not in loaded.apps
    record = json.loads((bundle / "heads" / "products" / "head.json").read_text())
    assert record["data"]["path"] == str(data.resolve()) and Path(record["backbone"]).is_absolute()
    assert all(loaded.apps[n].name == n for n in ("products", "styles"))
    assert head_app_names({"a": "categorize", "b": "moderate"}) == {"a": "categorize", "b": "moderate"}
    for bad in ({"x": "moderate", "moderate": "categorize", "c": "categorize"}, {"similar": "moderate",
                                                                                 "y": "moderate"}):
        with pytest.raises(ReasonError) as e:
            head_app_names(bad)
        assert e.value.reason == "bad_head_name"
