"""How a run's backbone starts: timm random init or the packaged ImageNet EfficientNet-Lite0."""

import pytest
import torch

from tagsight.models.pretrained import LITE0_BN_EPS, efficientnet_lite0_model, run_backbone
from tagsight.train.config import PretrainConfig


def test_lite0_init_loads_the_package_weights_and_its_input_normalisation():
    packaged = efficientnet_lite0_model(num_classes=0)
    backbone = run_backbone("efficientnet_lite0", 64, "efficientnet-lite0")
    assert backbone.data_config.mean == backbone.data_config.std == (0.5, 0.5, 0.5)
    assert backbone.data_config.input_size == 64
    own, ref = backbone.model.state_dict(), packaged.state_dict()
    assert all(torch.equal(own[k], ref[k]) for k in ref)
    assert all(m.eps == LITE0_BN_EPS for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_reopening_builds_the_same_architecture_without_the_package_weights():
    skeleton = run_backbone("efficientnet_lite0", 64, "efficientnet-lite0", load_weights=False)
    packaged = efficientnet_lite0_model(num_classes=0)
    assert skeleton.model.state_dict().keys() == packaged.state_dict().keys()
    assert skeleton.data_config == run_backbone("efficientnet_lite0", 64, "efficientnet-lite0").data_config
    assert not torch.equal(skeleton.model.conv_stem.weight, packaged.conv_stem.weight)


def test_random_init_is_timm_with_its_own_normalisation():
    backbone = run_backbone("resnet18", 32)
    assert backbone.data_config.mean == (0.485, 0.456, 0.406) and backbone.data_config.input_size == 32


@pytest.mark.parametrize("sets, match", [
    (["model.init=imagenet"], "model.init must be one of"),
    (["model.init=efficientnet-lite0"], "set model.name: efficientnet_lite0"),
])
def test_config_refuses_unknown_or_mismatched_init(sets, match):
    with pytest.raises(ValueError, match=match):
        PretrainConfig.from_yaml(None, sets)


def test_timm_kwargs_rebuild_the_same_lite0_and_timm_defaults_would_not():
    import timm

    backbone = run_backbone("efficientnet_lite0", 64, "efficientnet-lite0")
    assert backbone.timm_kwargs == {"bn_eps": LITE0_BN_EPS} and run_backbone("resnet18", 32).timm_kwargs == {}
    state = backbone.model.state_dict()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = backbone.eval()(x)
        for kwargs, same in ((backbone.timm_kwargs, True), ({}, False)):
            rebuilt = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0, **kwargs).eval()
            rebuilt.load_state_dict(state)
            assert torch.allclose(rebuilt(x), expected, atol=1e-5) is same
