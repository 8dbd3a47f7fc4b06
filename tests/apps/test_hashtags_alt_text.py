import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.apps.alt_text import NOTHING, AltTextApp, sentence
from tagsight.apps.bundle import load_bundle
from tagsight.apps.calibration import PlattScaling, load_calibration
from tagsight.apps.embedder import Embedder
from tagsight.apps.hashtags import HashtagsApp
from tagsight.apps.run import load_run
from tagsight.fsio import ReasonError
from tagsight.models.heads import LinearHead


@pytest.fixture(scope="module")
def parts(tiny_run):
    run = load_run(tiny_run[2])
    return Embedder(run.backbone), run


def fixed_head(in_features, logits):
    """A head answering ``logits`` for any image (zero weights, bias = logits)."""
    head = LinearHead(in_features, len(logits))
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor(logits, dtype=torch.float32))
    return head


def images(n):
    return [Image.new("RGB", (40, 40), (30 * i, 100, 200)) for i in range(n)]


def test_hashtags_are_top_k_calibrated_with_the_spellings_people_use_and_abstain_below_threshold(parts):
    embedder, _ = parts
    head = fixed_head(embedder.num_features, [4.0, 2.0, 0.0, -3.0])
    app = HashtagsApp(embedder, head, PlattScaling(loss="bce"), ["dog.n.01", "beach.n.01", "sky.n.01", "cat.n.01"],
                      ["#Dog", "#beach", "#sky", "#cat"], k=2, threshold=0.5)
    out = app.predict(images(2))
    assert len(out) == 2 and out[0] == out[1]
    tags = out[0]["hashtags"]
    assert [t["hashtag"] for t in tags] == ["#Dog", "#beach"] and tags[0]["name"] == "dog"
    assert tags[0]["probability"] == pytest.approx(1 / (1 + np.exp(-4.0)), abs=1e-4) and not out[0]["abstained"]
    assert [t["hashtag"] for t in app.predict(images(1), k=3, threshold=0.6)[0]["hashtags"]] == ["#Dog", "#beach"]
    high = app.predict(images(1), threshold=0.99)[0]
    assert high["abstained"] and high["hashtags"] == []
    with pytest.raises(ReasonError, match="no option"):
        app.predict(images(1), topk=3)
    with pytest.raises(ReasonError):
        app.predict(images(1), threshold=2)


def test_alt_text_names_only_precise_concepts_most_confident_first_and_counts_people(parts):
    embedder, _ = parts
    head = fixed_head(embedder.num_features, [1.0, 3.0, 5.0, 2.0])
    concepts = [{"index": 0, "name": "dog", "alt_text": True, "threshold": 0.5},
                {"index": 1, "name": "beach", "alt_text": True, "threshold": 0.9},
                {"index": 2, "name": "selfie", "alt_text": False, "reason": "target_not_reached"},
                {"index": 3, "name": "outdoor", "alt_text": True, "threshold": 0.8}]
    faces = iter([2, 0, 1])
    app = AltTextApp(embedder, head, PlattScaling(loss="bce"), concepts, face_counter=lambda img: next(faces))
    out = app.predict(images(3))
    # selfie is the most probable but not precise enough; beach (p=0.95) clears its 0.9; dog (0.73) its 0.5
    assert out[0]["alt_text"] == "Image may contain: 2 people, beach, outdoor, dog"
    assert [c["name"] for c in out[1]["concepts"]] == ["beach", "outdoor", "dog"] and out[1]["people"] == 0
    assert out[2]["alt_text"].startswith("Image may contain: 1 person, ")
    assert "selfie" not in str(out)
    one = app.predict(images(1), max_concepts=1, count_people="false")[0]
    assert one["alt_text"] == "Image may contain: beach" and one["people"] is None
    assert set(out[0]) == {"alt_text", "concepts", "people"}  # a count, never an identity or a face box


def test_alt_text_that_says_nothing_says_why_and_which_concept_came_closest(parts):
    embedder, _ = parts
    head = fixed_head(embedder.num_features, [1.0, 3.0])
    concepts = [{"index": 0, "name": "dog", "alt_text": True, "threshold": 0.9},
                {"index": 1, "name": "beach", "alt_text": True, "threshold": 0.99}]
    app = AltTextApp(embedder, head, PlattScaling(loss="bce"), concepts, face_counter=None)
    out = app.predict(images(1))[0]
    assert out["alt_text"] == NOTHING and out["people"] is None
    # beach (0.953 against 0.99) is closer to its threshold than dog (0.731 against 0.9)
    assert out["why"]["reason"] == "below_threshold"
    assert out["why"]["closest"] == {"name": "beach", "probability": 0.9526, "threshold": 0.99}
    silent = [{"index": 0, "name": "dog", "alt_text": False}, {"index": 1, "name": "beach", "alt_text": False}]
    mute = AltTextApp(embedder, head, PlattScaling(loss="bce"), silent, face_counter=None).predict(images(1))[0]
    assert mute["why"]["reason"] == "no_precise_concepts" and "0 of 2 labels" in mute["why"]["detail"]
    assert mute["why"]["closest"]["name"] == "beach" and mute["why"]["closest"]["threshold"] is None


def test_the_open_set_guard_silences_alt_text_and_hashtags_on_unfamiliar_photos(parts):
    from tagsight.apps.openset import OpenSetGuard

    embedder, _ = parts
    head = fixed_head(embedder.num_features, [1.0, 3.0])
    concepts = [{"index": 0, "name": "dog", "alt_text": True, "threshold": 0.5},
                {"index": 1, "name": "beach", "alt_text": True, "threshold": 0.5}]
    # the largest output is 3.0: a guard at 2.5 lets the photo through, one at 3.5 does not
    for threshold, said in ((2.5, True), (3.5, False)):
        guard = OpenSetGuard("max_logit", threshold, 0.05)
        alt = AltTextApp(embedder, head, PlattScaling(loss="bce"), concepts, face_counter=None, guard=guard)
        tags = HashtagsApp(embedder, head, PlattScaling(loss="bce"), ["dog.n.01", "beach.n.01"], ["#dog", "#beach"],
                           guard=guard)
        a, h = alt.predict(images(1))[0], tags.predict(images(1))[0]
        assert bool(a["concepts"]) is said and h["abstained"] is not said
        if not said:
            assert a["why"]["reason"] == "unfamiliar" and "3.000 < 3.500" in a["why"]["detail"]
            assert h["reason"] == "unfamiliar" and h["closest"] == {"hashtag": "#beach", "probability": 0.9526}


def test_sentence_forms():
    assert sentence(0, []) == NOTHING
    assert sentence(1, []) == "Image may contain: 1 person"
    assert sentence(3, ["dog"]) == "Image may contain: 3 people, dog"


# Two imagenette-160 "tench" photos of an angler holding a fish, one frontal face each (checked by eye).
FACE_FILES = ("imagenette-160/val/n01440764/ILSVRC2012_val_00017700.JPEG",
              "imagenette-160/val/n01440764/n01440764_13251.JPEG")


def test_alt_text_counts_real_faces_with_mtcnn(parts, shared_data):
    pytest.importorskip("facenet_pytorch", reason="people are counted with facenet-pytorch's MTCNN")
    embedder, _ = parts
    paths = [shared_data / f for f in FACE_FILES]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"face photos {FACE_FILES} not in the shared data")
    one, other = (Image.open(p).convert("RGB") for p in paths)
    two = Image.new("RGB", (one.width + other.width, max(one.height, other.height)))
    two.paste(one, (0, 0))
    two.paste(other, (one.width, 0))
    nobody = Image.new("RGB", (160, 160), (120, 160, 90))
    app = AltTextApp(embedder, fixed_head(embedder.num_features, [0.0]), PlattScaling(loss="bce"),
                     [{"index": 0, "name": "x", "alt_text": True, "threshold": 0.99}])
    out = app.predict([one, two, nobody])
    assert [o["people"] for o in out] == [1, 2, 0]
    assert [o["alt_text"] for o in out] == ["Image may contain: 1 person", "Image may contain: 2 people", NOTHING]


def test_without_a_face_detector_people_are_not_counted(parts, monkeypatch):
    import tagsight.privacy.faces as faces

    monkeypatch.setattr(faces, "people_detector_available", lambda: False)
    embedder, _ = parts
    app = AltTextApp(embedder, fixed_head(embedder.num_features, [0.0]), PlattScaling(loss="bce"),
                     [{"index": 0, "name": "x", "alt_text": True, "threshold": 0.99}])
    out = app.predict(images(1))[0]
    assert out["people"] is None and out["alt_text"] == NOTHING
    assert "not counted" in app.describe()["face_detector"]


def test_bundle_serves_hashtags_and_alt_text_from_one_forward(tiny_bundle, parts):
    bundle = load_bundle(tiny_bundle)
    assert {"hashtags", "alt-text"} <= set(bundle.apps) and "similar" in bundle.missing
    calls = []
    real = bundle.embedder.embed
    bundle.embedder.embed = lambda imgs: calls.append(len(imgs)) or real(imgs)
    out = bundle.predict(images(3), ["hashtags", "alt-text"])
    assert calls == [3] and len(out["hashtags"]) == 3 and len(out["alt-text"]) == 3
    cal = load_calibration(tiny_bundle)
    allowed = {c["name"] for c in cal["concepts"] if c["alt_text"]}
    assert all(c["name"] in allowed for row in out["alt-text"] for c in row["concepts"])
    with pytest.raises(ReasonError, match="unavailable"):
        bundle.app("similar")
    assert bundle.describe()["apps"]["hashtags"]["labels"] == len(cal["concepts"])


def test_a_face_counter_given_as_any_other_text_than_default_is_refused(parts):
    embedder, _ = parts
    with pytest.raises(ValueError, match="face_counter"):
        AltTextApp(embedder, fixed_head(embedder.num_features, [1.0]), PlattScaling(loss="bce"), [],
                   face_counter="mtcnn")
