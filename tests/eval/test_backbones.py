"""Loading backbones: tagsight runs, random timm models, weight files, the ImageNet EfficientNet-Lite0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tagsight.eval.backbones import load_backbone
from tagsight.fsio import ReasonError
from tagsight.models.backbone import create_backbone
from tagsight.models.pretrained import efficientnet_lite0_model, load_by_position
from tagsight.methods.hashtag import HashtagObjective
from tagsight.train.checkpoint import save_checkpoint
from tagsight.train.config import PretrainConfig


def make_run(run: Path) -> HashtagObjective:
    torch.manual_seed(7)
    objective = HashtagObjective(create_backbone("test_resnet", img_size=32), 3)
    with torch.no_grad():
        for p in objective.parameters():
            p.add_(torch.randn_like(p))
    run.mkdir(parents=True)
    cfg = PretrainConfig.from_yaml(None, ["model.name=test_resnet", "model.img_size=32"])
    (run / "config.yaml").write_text(cfg.to_yaml())
    save_checkpoint(run, 5, objective, torch.optim.SGD(objective.parameters(), lr=0.1), {})
    return objective


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_run_and_checkpoint_folders_round_trip_the_backbone(tmp_path):
    objective = make_run(tmp_path / "run")
    for spec in (tmp_path / "run", tmp_path / "run" / "checkpoints" / "step-00000005"):
        backbone = load_backbone(str(spec))
        assert backbone.name == "test_resnet" and backbone.data_config.input_size == 32
        assert same_weights(backbone.model, objective.backbone.model)
        assert not backbone.training


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(1)
    before = torch.get_rng_state()
    a, b = load_backbone("timm:test_resnet", 32), load_backbone("test_resnet", 32)
    assert torch.equal(torch.get_rng_state(), before)
    assert same_weights(a.model, b.model)
    assert not same_weights(a.model, load_backbone("test_resnet", 32, seed=1).model)


def test_weights_file_by_name_with_prefix_and_classifier_dropped(tmp_path):
    source = create_backbone("test_resnet", num_classes=5, img_size=32)  # has an fc classifier
    path = tmp_path / "w.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in source.model.state_dict().items()}, str(path))
    loaded = load_backbone(f"file:{path}", 32, arch="test_resnet", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert loaded.data_config.mean == (0.5, 0.5, 0.5) and loaded.data_config.std == (0.25, 0.25, 0.25)
    own = loaded.model.state_dict()
    assert all(torch.equal(own[k], source.model.state_dict()[k]) for k in own)


@pytest.mark.parametrize("spec, kwargs, reason", [
    ("no-such-model-or-folder", {}, "unknown_backbone"),
    ("file:/nonexistent.pth", {"arch": "test_resnet"}, "missing_weights"),
    ("file:/nonexistent.pth", {}, "missing_arch"),
])
def test_bad_specs_give_reason_codes(spec, kwargs, reason):
    with pytest.raises(ReasonError) as info:
        load_backbone(spec, **kwargs)
    assert info.value.reason == reason


def test_run_folder_without_checkpoint_or_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReasonError, match="config.yaml"):
        load_backbone(str(tmp_path / "empty"))


def test_efficientnet_lite0_loads_by_position_with_half_mean_std():
    backbone = load_backbone("efficientnet-lite0", img_size=64)
    assert len(backbone.model.state_dict()) == 294  # the package's 296 tensors minus the classifier pair
    assert backbone.data_config.mean == backbone.data_config.std == (0.5, 0.5, 0.5)
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1280) and torch.isfinite(out).all()
    assert len(efficientnet_lite0_model(num_classes=1000).state_dict()) == 296


def test_load_by_position_names_the_first_mismatch():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 4))
    bad = {"a": torch.zeros(3, 2), "b": torch.zeros(3), "c": torch.zeros(3, 4), "d": torch.zeros(4)}
    with pytest.raises(ReasonError, match=r"tensor 2 \(1.weight\)"):
        load_by_position(model, bad)
    with pytest.raises(ReasonError, match="3 source tensors for 4"):
        load_by_position(model, bad, drop_tail=1)


IMAGENETTE_INDEX = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
                    "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}


@pytest.mark.slow
def test_efficientnet_lite0_classifies_real_imagenette_photos(shared_data):
    from PIL import Image

    from tagsight.data.transforms import eval_transform

    model = efficientnet_lite0_model(num_classes=1000)
    transform = eval_transform(load_backbone("efficientnet-lite0").data_config)
    images, truth = [], []
    for wnid, index in IMAGENETTE_INDEX.items():
        for path in sorted((shared_data / "imagenette-160" / "val" / wnid).glob("*.JPEG"))[:5]:
            with Image.open(path) as img:
                images.append(transform(img))
            truth.append(index)
    with torch.no_grad():
        predicted = model(torch.stack(images)).argmax(1).numpy()
    assert np.mean(predicted == np.asarray(truth)) >= 0.5  # 1000-way; measured 0.6-0.65 on 160 px photos


def test_a_run_folder_at_a_url_loads_like_the_local_one(tmp_path, monkeypatch):
    from tests.s3server import put_folder

    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    objective = make_run(tmp_path / "run")
    put_folder(tmp_path / "run", "memory://eval-runs/run")
    assert same_weights(load_backbone("memory://eval-runs/run").model, objective.backbone.model)
