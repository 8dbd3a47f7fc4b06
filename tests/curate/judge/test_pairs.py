import json

import numpy as np
import pytest
from PIL import Image

from tagsight.curate.judge.pairs import PairStudy, chosen_model, make_pair_study
from tagsight.fsio import ReasonError

from .conftest import write_samples


@pytest.fixture
def many(tmp_path):
    """200 pairs whose pixels tell the models apart: before is dark, after is bright; value encodes the seed."""
    def draw(level):
        return lambda p, i: Image.new("RGB", (32, 32), (level, i, 0))

    return (write_samples(tmp_path / "b", draw(10), prompts=("#a", "#b"), per_prompt=100, kind="pretrain"),
            write_samples(tmp_path / "a", draw(200), prompts=("#a", "#b"), per_prompt=100, kind="tune"))


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_placement_is_random_balanced_and_unblinding_recovers_the_model(many, tmp_path):
    summary = make_pair_study(*many, tmp_path / "study", seed=3)
    study = PairStudy.load(tmp_path / "study")
    secret = study.unblind()["pairs"]
    lefts = [secret[p["pair"]]["left"] for p in study.pairs]
    assert summary["pairs"] == 200 and summary["after_left"] == 100 and lefts.count("after") == 100
    assert any(a != b for a, b in zip(lefts, lefts[1:]))        # not one side then the other
    for p in study.pairs:
        s = secret[p["pair"]]
        left = pixels(study.dir / "images" / f"{p['left']}.png")
        assert ("after" if left[0, 0, 0] == 200 else "before") == s["left"]           # unblinding is right
        right = pixels(study.dir / "images" / f"{p['right']}.png")
        assert left[0, 0, 1] == right[0, 0, 1] == s["seed"]                             # same seed on both sides
        assert chosen_model("left", s["left"]) == s["left"] and chosen_model("none", s["left"]) == "tie"
        assert chosen_model("right", s["left"]) != s["left"]
    order = [(secret[p["pair"]]["prompt"], secret[p["pair"]]["seed"]) for p in study.pairs]
    assert order != sorted(order)                                                    # pair order shuffled


def test_public_half_names_no_model_and_copies_carry_no_metadata(before_after, tmp_path):
    make_pair_study(*before_after, tmp_path / "study")
    public = (tmp_path / "study" / "pairs.json").read_text()
    for secret_word in ("before", "after", "pretrain", "tune", "0000.png", "runs/"):
        assert secret_word not in public
    assert set(json.loads(public)["pairs"][0]) == {"pair", "prompt", "left", "right"}
    for png in (tmp_path / "study" / "images").glob("*.png"):
        data = png.read_bytes()
        assert b"tEXt" not in data and b"pretrain" not in data and b"tune" not in data
    sources = {(before_after[0] / "0000.png").read_bytes(), (before_after[1] / "0000.png").read_bytes()}
    assert all(b"tEXt" in s for s in sources)                                   # the sources had it


def test_same_seed_same_study_other_seed_other_placement(many, tmp_path):
    def lefts(seed, name):
        make_pair_study(*many, tmp_path / name, seed=seed)
        s = PairStudy.load(tmp_path / name)
        secret = s.unblind()["pairs"]
        return [(secret[p["pair"]]["prompt"], secret[p["pair"]]["seed"], secret[p["pair"]]["left"]) for p in s.pairs]

    first = lefts(0, "x")
    assert first == lefts(0, "y")
    assert first != lefts(1, "z")
    with pytest.raises(ReasonError, match="already holds a pair study"):
        make_pair_study(*many, tmp_path / "x")
