"""Multi-crop views seeded by the sample generator, and the label-free stream with data.select all|labelled."""

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.data.multicrop import MultiCropConfig, color_distort, multicrop_transform
from tagsight.data.pipeline import StreamConfig, make_loader
from tagsight.data.views import ViewStream
from tagsight.data.transforms import eval_transform

from tests.data.test_pipeline import DataConfig, dataset  # noqa: F401  (module fixture: 12 posts, one unlabelled)


def photo(seed=0, size=(60, 48)) -> Image.Image:
    coarse = np.random.default_rng(seed).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


CFG = MultiCropConfig(n_global=2, global_size=24, n_local=3, local_size=12)


def test_views_have_the_configured_counts_and_sizes():
    views = multicrop_transform(DataConfig(), CFG)(photo(), torch.Generator().manual_seed(0))
    assert tuple(views["image"].shape) == (2, 3, 24, 24) and tuple(views["local"].shape) == (3, 3, 12, 12)
    assert CFG.sizes(16) == [24, 24, 12, 12, 12] and CFG.pixels(16) == 2 * 24 * 24 + 3 * 12 * 12
    default = MultiCropConfig(n_local=0)
    assert default.sizes(16) == [16, 16]
    none_local = multicrop_transform(DataConfig(), default)(photo(), torch.Generator().manual_seed(0))
    assert tuple(none_local["image"].shape) == (2, 3, 16, 16) and none_local["local"].shape[0] == 0


def test_the_same_seed_gives_the_same_views_and_crops_differ_from_each_other():
    t = multicrop_transform(DataConfig(), CFG)
    a, b = t(photo(), torch.Generator().manual_seed(7)), t(photo(), 7)
    c = t(photo(), torch.Generator().manual_seed(8))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["local"], b["local"])
    assert not torch.equal(a["image"], c["image"])
    assert not torch.equal(a["image"][0], a["image"][1])


def test_colour_distortion_stays_in_range_and_grayscale_has_equal_channels():
    x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = color_distort(x, torch.Generator().manual_seed(1), 1.0, p=1.0, gray_p=0.0)
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x)
    gray = color_distort(x, torch.Generator().manual_seed(1), 1.0, p=0.0, gray_p=1.0)
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    assert torch.equal(color_distort(x, torch.Generator(), 0.0, p=1.0, gray_p=0.0), x)


@pytest.mark.parametrize("kw, match", [({"n_global": 1}, "n_global"), ({"local_scale": (0.5, 0.2)}, "local_scale"),
                                       ({"local_size": 4}, "local_size"), ({"gray_p": 2.0}, "gray_p")])
def test_bad_multicrop_settings_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        MultiCropConfig(**kw)


def view_stream(dataset, select, split="train", transform=None):  # noqa: F811
    index, vocab = dataset
    cfg = StreamConfig(epoch_length=24, batch_size=4, seed=0, sampling="none", holdout_fraction=0.25, split=split)
    return ViewStream(index, vocab, transform or multicrop_transform(DataConfig(), CFG), cfg, select=select)


def test_all_keeps_unlabelled_posts_and_labelled_drops_them(dataset):  # noqa: F811
    everything, labelled = view_stream(dataset, "all"), view_stream(dataset, "labelled")
    mask = labelled.labelled_mask()
    assert (~mask).sum() >= 1                                    # post p11 carries only an unknown tag
    assert set(labelled.candidates) == set(everything.candidates) & set(np.flatnonzero(mask))
    held = view_stream(dataset, "all", "heldout", eval_transform(DataConfig()))
    assert len(everything.candidates) + len(held.candidates) == len(mask)   # counts reconcile: every sample once
    assert np.all(everything.weights == 1.0)


def test_view_batches_are_multicrop_tensors_in_exact_order(dataset):  # noqa: F811
    s = view_stream(dataset, "all")
    first = list(make_loader(s, 0))
    again = list(make_loader(view_stream(dataset, "all"), 2))
    assert set(first[0]) == {"image", "local", "index"} and tuple(first[0]["image"].shape) == (4, 2, 3, 24, 24)
    for a, b in zip(first, again):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["image"], b["image"])
    s.set_position(0, 2)
    assert torch.equal(next(iter(make_loader(s, 0)))["local"], first[2]["local"])
    held = next(iter(make_loader(view_stream(dataset, "all", "heldout", eval_transform(DataConfig())), 0)))
    assert tuple(held["image"].shape[1:]) == (3, 16, 16) and "target" not in held


def test_unknown_selection_is_refused(dataset):  # noqa: F811
    with pytest.raises(ValueError, match="data.select"):
        view_stream(dataset, "curated")
