"""timm backbones as feature extractors, their data config, and the linear head."""

from __future__ import annotations

import json

import pytest
import torch

from tagsight.models import DataConfig, LinearHead, create_backbone

TINY = "test_resnet"


def test_features_shape_and_data_config_at_32px():
    bb = create_backbone(TINY, img_size=32)
    feats = bb(torch.zeros(4, 3, 32, 32))
    assert feats.shape == (4, bb.num_features) and bb.num_features > 0
    assert bb.name == TINY
    assert bb.data_config.input_size == 32
    assert len(bb.data_config.mean) == 3 and all(s > 0 for s in bb.data_config.std)


def test_default_input_size_comes_from_timm():
    assert create_backbone(TINY).data_config.input_size == 160  # test_resnet's pretrained_cfg


def test_img_size_reaches_models_that_need_it():
    vit = create_backbone("test_vit", img_size=32)
    assert vit(torch.zeros(2, 3, 32, 32)).shape == (2, vit.num_features)


def test_unknown_model_suggests_a_close_name():
    with pytest.raises(ValueError, match="resnet18"):
        create_backbone("resnt18")


def test_bad_img_size_is_rejected():
    with pytest.raises(ValueError, match="img_size"):
        create_backbone(TINY, img_size=0)


def test_data_config_round_trips_through_json():
    cfg = create_backbone(TINY, img_size=48).data_config
    assert DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("bad, match", [
    ({"mean": (0.5, 0.5), "std": (1, 1, 1), "input_size": 32}, "3 channel"),
    ({"mean": (0, 0, 0), "std": (1, 0, 1), "input_size": 32}, "std"),
    ({"mean": (0, 0, 0), "std": (1, 1, 1), "input_size": 0}, "input_size"),
])
def test_data_config_validates(bad, match):
    with pytest.raises(ValueError, match=match):
        DataConfig(**bad)


def test_data_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown DataConfig keys"):
        DataConfig.from_dict({"mean": [0, 0, 0], "std": [1, 1, 1], "input_size": 32, "szie": 3})


def test_linear_head_starts_with_zero_bias():
    head = LinearHead(8, 5)
    assert head(torch.zeros(2, 8)).shape == (2, 5)
    assert torch.count_nonzero(head.bias) == 0
