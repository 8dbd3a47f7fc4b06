"""Labelled image sets, cached feature extraction (also as torchrun shares), and the eval CLI end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight import cli
from tagsight.eval import features
from tagsight.eval.backbones import load_backbone
from tagsight.eval.datasets import FolderImages, open_labelled
from tagsight.fsio import ReasonError
from tagsight.train.distributed import DistEnv

CLASSES = ("cat", "dog", "owl")


def class_folders(root: Path, per_class: int = 4, seed: int = 0) -> Path:
    """root/<class>/<i>.jpg: 32 px images whose colour depends on the class, with a little noise."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            base = np.zeros((32, 32, 3)) + np.eye(3)[c] * 200
            pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg", quality=90)
    return root


def test_folder_images_sorted_classes_labels_and_images(tmp_path):
    root = class_folders(tmp_path / "train", per_class=2)
    (root / "notes.txt").write_text("ignored: not in a class folder")
    images = open_labelled(root)
    assert images.classes == list(CLASSES) and len(images) == 6
    assert images.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert images.load(3).size == (32, 32) and images.load(3).mode == "RGB"


def test_val_classes_map_onto_train_classes(tmp_path):
    class_folders(tmp_path / "val", per_class=1)
    val = FolderImages(tmp_path / "val", classes=["ant", *CLASSES])
    assert val.labels.tolist() == [1, 2, 3]
    with pytest.raises(ReasonError) as info:
        FolderImages(tmp_path / "val", classes=["cat", "dog"])
    assert info.value.reason == "class_mismatch"


def test_empty_folder_has_a_reason(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ReasonError) as info:
        FolderImages(tmp_path / "empty")
    assert info.value.reason == "no_images"


def test_ingested_dataset_uses_the_label_field(tmp_path):
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    class_folders(tmp_path / "src", per_class=2)
    cfg = IngestConfig(workers=1, near_duplicate_radius=None, image=ImageConfig(max_side=32))
    ingest(open_source(tmp_path / "src", "folder"), tmp_path / "ds", cfg=cfg)
    images = open_labelled(tmp_path / "ds")
    assert images.classes == list(CLASSES) and len(images) == 6
    assert sorted(images.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    # the image of each sample is its class colour: the dominant channel is the label
    assert all(int(np.asarray(images.load(i)).mean((0, 1)).argmax()) == images.labels[i] for i in range(6))
    assert images.identity.startswith("dataset:")


class CountingBackbone(torch.nn.Module):
    """Wraps a backbone and counts forward calls."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0
        self.name, self.num_features, self.data_config = inner.name, inner.num_features, inner.data_config

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def test_second_extraction_reads_the_cache(tmp_path):
    images = open_labelled(class_folders(tmp_path / "train"))
    backbone = CountingBackbone(load_backbone("test_resnet", 32))
    x1, y1 = features.extract_features(backbone, images, batch_size=5, cache_dir=tmp_path / "cache")
    assert backbone.calls == 3 and x1.shape == (12, backbone.num_features) and x1.dtype == np.float32
    x2, y2 = features.extract_features(backbone, images, batch_size=5, cache_dir=tmp_path / "cache")
    assert backbone.calls == 3 and np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert y1.dtype == np.int64 and y1.tolist() == images.labels.tolist()
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1


def test_cache_key_changes_with_weights_data_and_transform(tmp_path):
    images = open_labelled(class_folders(tmp_path / "train"))
    a, b = load_backbone("test_resnet", 32), load_backbone("test_resnet", 32, seed=1)
    key = features.cache_key(a, images)
    assert key == features.cache_key(load_backbone("test_resnet", 32), open_labelled(tmp_path / "train"))
    assert key != features.cache_key(b, images)
    assert key != features.cache_key(load_backbone("test_resnet", 48), images)
    picture = tmp_path / "train" / "cat" / "0.jpg"
    os.utime(picture, ns=(0, 0))
    assert key != features.cache_key(a, open_labelled(tmp_path / "train"))


def test_torchrun_shares_are_gathered_back_in_dataset_order(tmp_path, monkeypatch):
    images = open_labelled(class_folders(tmp_path / "train", per_class=3))  # 9 images: shares of 5 and 4
    backbone = load_backbone("test_resnet", 32)
    expected, _ = features.extract_features(backbone, images, batch_size=4)
    rank1 = list(features.extract_share(backbone, images, 4, 0, DistEnv(rank=1, world_size=2)))
    assert rank1[1].tolist() == [1, 3, 5, 7]
    # rank 0's view of the collective: its own share first, then rank 1's (features, then indices)
    monkeypatch.setattr(features, "all_gather_cat", lambda value, env: torch.cat([value, rank1.pop(0)]))
    gathered, labels = features.extract_features(backbone, images, batch_size=4, env=DistEnv(rank=0, world_size=2))
    assert np.allclose(gathered, expected, atol=1e-5) and labels.tolist() == images.labels.tolist()


def main(argv: list[str], monkeypatch) -> int:
    """``tagsight ARGV`` with the eval verb registered (until the CLI lists it)."""
    if "eval" not in cli.VERB_MODULES:
        monkeypatch.setattr(cli, "VERB_MODULES", (*cli.VERB_MODULES, "eval"))
    return cli.main(argv)


@pytest.mark.parametrize("method, extra", [("knn", ["--k", "3"]), ("linear", ["--epochs", "5"])])
def test_cli_end_to_end_on_class_folders(tmp_path, capsys, monkeypatch, method, extra):
    train, val = class_folders(tmp_path / "train", 4, seed=0), class_folders(tmp_path / "val", 2, seed=1)
    out = tmp_path / "result.json"
    argv = ["eval", method, "timm:test_resnet", "--train", str(train), "--val", str(val), "--img-size", "32",
            "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--out", str(out), *extra]
    assert main(argv, monkeypatch) == 0
    assert "top-1" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["method"] == method and result["backbone"] == "timm:test_resnet"
    assert result["train"]["count"] == 12 and result["val"]["count"] == 6 and result["num_classes"] == 3
    assert 0 <= result["metrics"]["top1"] <= result["metrics"]["top5"] == 1.0  # 3 classes: top-5 always hits
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2


def test_cli_reports_a_bad_backbone(tmp_path, capsys, monkeypatch):
    train = class_folders(tmp_path / "train", 1)
    assert main(["eval", "knn", "nope-not-a-model", "--train", str(train), "--val", str(train)], monkeypatch) == 2
    assert "unknown_backbone" in capsys.readouterr().err


def test_features_of_a_folder_record_that_they_hold_no_posts_and_the_audit_agrees(tmp_path):
    from tagsight.lineage import FEATURE_META_KEY, safetensors_metadata
    from tagsight.privacy.audit import audit
    from tagsight.privacy.forget import Forgotten
    from tagsight.privacy.tombstones import Tombstones

    images = open_labelled(class_folders(tmp_path / "train"))
    features.extract_features(load_backbone("test_resnet", 32), images, batch_size=5, cache_dir=tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("*.safetensors")
    record = json.loads(safetensors_metadata(cached)[FEATURE_META_KEY])
    assert record["post_keys"] == [] and record["parents"][0]["kind"] == "folder"
    assert audit(tmp_path / "cache", Forgotten(Tombstones(), frozenset({"posts/p1"}))).clean
    from tagsight.eval.datasets import SubsetImages

    assert SubsetImages(images, [0, 2]).lineage()["post_keys"] == []
