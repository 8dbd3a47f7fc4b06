"""Serving reads a run without the trainer, and loading a whole bundle's apps imports no fitting module."""

from __future__ import annotations

import shutil

import torch

from tagsight.apps.run import RunSettings, load_run, load_run_backbone
from tagsight.eval.backbones import load_backbone
from tagsight.train.config import PretrainConfig
from tests.serve.lean import fitting_modules, loaded_modules


def test_run_settings_read_what_the_pretrain_config_says(tiny_run, tmp_path):
    cfg_path = tiny_run[2] / "config.yaml"
    full, light = PretrainConfig.from_yaml(cfg_path), RunSettings.from_yaml(cfg_path)
    assert (light.model, light.img_size, light.init, light.loss) == (
        full.model.name, full.model.img_size, full.model.init, full.objective.loss)
    (tmp_path / "empty.yaml").write_text("{}\n")   # absent fields: the trainer's defaults
    default, empty = PretrainConfig(), RunSettings.from_yaml(tmp_path / "empty.yaml")
    assert (empty.model, empty.img_size, empty.init, empty.loss) == (
        default.model.name, default.model.img_size, default.model.init, default.objective.loss)


def test_the_run_backbone_is_the_one_evaluation_loads(tiny_run):
    run_dir = tiny_run[2]
    ours, theirs = load_run_backbone(run_dir).state_dict(), load_backbone(str(run_dir)).state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    run = load_run(run_dir)
    assert run.loss == run.config.objective.loss   # the full config is still there for fitting code


def test_loading_a_bundles_apps_imports_no_fitting_module(tiny_run, tiny_bundle, make_colour_folder, tmp_path):
    from tagsight.apps.heads import HeadConfig, train_head
    from tagsight.apps.similar import build_index
    from tagsight.apps.embedder import Embedder

    dataset, _, run_dir = tiny_run
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    backbone = load_run(run_dir).backbone
    data = make_colour_folder(tmp_path / "data", {"red": (220, 20, 20), "blue": (20, 20, 220)}, per_class=6)
    train_head(data, backbone, str(run_dir), bundle / "heads" / "colours", HeadConfig(task="categorize", epochs=2))
    shutil.copytree(dataset, tmp_path / "ds")
    build_index(tmp_path / "ds", Embedder(backbone), bundle / "index")
    modules = loaded_modules(
        "import tagsight.serve.app\nfrom tagsight.serve.loader import load_bundle_apps\n"
        f"apps = load_bundle_apps({str(bundle)!r}, 'cpu')\n"
        "assert set(apps) == {'hashtags', 'alt-text', 'categorize', 'similar'}, sorted(apps)")
    assert fitting_modules(modules) == []
    assert "tagsight.apps.head_apps" in modules and "tagsight.apps.similar" in modules

