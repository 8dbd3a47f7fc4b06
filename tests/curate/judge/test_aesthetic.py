import json

import numpy as np
import pytest
from PIL import Image

from tagsight.curate.filters.aesthetic import PRIOR_MEASURES, RidgeHead, embed, image_prior_measures
from tagsight.curate.judge.aesthetic import AestheticStudyConfig, aesthetic_study
from tagsight.fsio import ReasonError

from .conftest import write_samples


def test_prior_ranks_a_sharp_colourful_sample_above_a_blurred_grey_one(sharp, dull):
    good, bad = image_prior_measures(sharp(0, 0)), image_prior_measures(dull(0, 0))
    assert np.mean(list(good.values())) > np.mean(list(bad.values()))
    assert good["sharpness"] > bad["sharpness"] and good["colour"] > bad["colour"] and bad["colour"] == 0.0
    assert set(good) == set(PRIOR_MEASURES) and all(0.0 <= v <= 1.0 for v in good.values())


def test_tiny_images_are_measured_after_a_smooth_upscale(sharp):
    """A 32 px sample and the same picture stored at 128 px are measured at one scale: blocky upscaling would
    make the small one look far sharper than the large one."""
    small = sharp(0, 0)
    big = small.resize((128, 128), Image.Resampling.BICUBIC)
    assert image_prior_measures(small) == pytest.approx(image_prior_measures(big), abs=0.02)


def test_study_finds_the_tuned_model_better_with_an_interval(before_after, tmp_path):
    result = aesthetic_study(*before_after, tmp_path / "study", AestheticStudyConfig(resamples=500))
    assert json.loads((tmp_path / "study" / "aesthetic.json").read_text()) == result
    a = result["aesthetic"]
    assert result["pairs"] == 6 and result["prompts"] == 2 and result["scorer"]["kind"] == "prior"
    assert a["after"] > a["before"] and a["mean_diff"] == pytest.approx(a["after"] - a["before"])
    assert 0 < a["ci95"][0] <= a["mean_diff"] <= a["ci95"][1]
    assert a["after_higher"] == 6 and a["after_higher_share"] == 1.0
    assert result["measures"]["colour"]["before"] == 0.0 and result["measures"]["colour"]["after"] > 0.5
    assert [p["prompt"] for p in result["per_prompt"]] == ["#beach #sunset", "#dog"]
    assert all(p["pairs"] == 3 and p["mean_diff"] > 0 for p in result["per_prompt"])
    row = result["images"][0]
    assert row["before"]["file"] == row["after"]["file"] == "0000.png" and row["before"]["aesthetic"] == row["before"]["prior"]


def test_no_change_gives_an_interval_around_zero(tmp_path, sharp):
    b = write_samples(tmp_path / "b", sharp, kind="pretrain")
    a = write_samples(tmp_path / "a", sharp, kind="tune")
    res = aesthetic_study(b, a, tmp_path / "s", AestheticStudyConfig(resamples=200))["aesthetic"]
    assert res["mean_diff"] == 0.0 and res["ci95"] == [0.0, 0.0] and res["equal"] == 6


def test_a_trained_head_scores_instead_of_the_prior(before_after, tmp_path, sharp, dull):
    images = [sharp(0, i) for i in range(4)] + [dull(0, i) for i in range(4)]
    x = embed(images, "timm:resnet18", 32).astype(np.float64)
    head_path = RidgeHead.fit(x, np.array([5.0] * 4 + [1.0] * 4), 0.1, "timm:resnet18", 32).save(tmp_path / "h.json")
    result = aesthetic_study(*before_after, tmp_path / "study", AestheticStudyConfig(str(head_path), resamples=200))
    assert result["scorer"]["kind"] == "head" and result["scorer"]["head"] == str(head_path.resolve())
    expected = RidgeHead.load(head_path).score_images([Image.open(before_after[1] / "0000.png").convert("RGB")])
    assert result["images"][0]["after"]["aesthetic"] == pytest.approx(float(expected[0]), abs=1e-6)
    assert result["images"][0]["after"]["aesthetic"] != result["images"][0]["after"]["prior"]
    with pytest.raises(ReasonError, match="not found"):
        AestheticStudyConfig(str(tmp_path / "nope.json"))
