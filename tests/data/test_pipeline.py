import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.data.index import SampleIndex
from tagsight.data.pipeline import (
    HashtagStream,
    StreamConfig,
    batch_normalizer,
    make_loader,
    rank_positions,
    split_batches,
    worker_batches,
)
from tagsight.data.transforms import eval_transform, train_transform
from tagsight.schema.catalog import iter_kept_hashtags
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import build_vocab

WORDS = ["dog", "car", "tree", "ball"]


def picture(seed: int, size=(40, 36)) -> Image.Image:
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


class DataConfig:
    input_size, mean, std = 16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[SampleIndex, object]:
    """12 posts (every third with 2 images), hashtags from WORDS; post p11 has only an unknown tag."""
    root = tmp_path_factory.mktemp("pipe")
    media, lines, n = root / "src" / "media", [], 0
    media.mkdir(parents=True)
    for p in range(12):
        files = []
        for _ in range(1 + (p % 3 == 0)):
            picture(200 + n, (40, 36)).save(media / f"{n}.jpg", quality=90)
            files.append(f"media/{n}.jpg")
            n += 1
        tags = ["qzxv"] if p == 11 else [WORDS[p % 4], WORDS[(p + 1) % 4]] if p % 5 == 0 else [WORDS[p % 4]]
        lines.append(json.dumps({"post_id": f"p{p}", "author_id": "ann", "created_at": "2024-01-01T00:00:00Z",
                                 "visibility": "public", "media": files, "hashtags": tags}))
    (root / "src" / "posts.jsonl").write_text("\n".join(lines) + "\n")
    cfg = IngestConfig(workers=1, samples_per_shard=5, near_duplicate_radius=None, image=ImageConfig(max_side=32))
    ingest(open_source(root / "src" / "posts.jsonl", "jsonl"), root / "ds", cfg=cfg)
    vocab = build_vocab(iter_kept_hashtags(root / "ds"), VocabConfig(min_count=1))
    return SampleIndex.build(root / "ds"), vocab


def stream(dataset, split="train", **kw) -> HashtagStream:
    index, vocab = dataset
    rank, world_size = kw.pop("rank", None), kw.pop("world_size", None)
    cfg = StreamConfig(**{"epoch_length": 12, "batch_size": 3, "seed": 5, "holdout_fraction": 0.3, "split": split, **kw})
    transform = train_transform(DataConfig()) if split == "train" else eval_transform(DataConfig())
    return HashtagStream(index, vocab, transform, cfg, rank=rank, world_size=world_size)


def batches(loader):
    return [(b["index"].tolist(), b["image"], b["target"]) for b in loader]


def assert_same_batches(a, b):
    assert [x[0] for x in a] == [y[0] for y in b]
    for (_, image_a, target_a), (_, image_b, target_b) in zip(a, b):
        assert torch.equal(image_a, image_b) and torch.equal(target_a, target_b)


def test_unlabelled_posts_are_excluded_and_splits_never_share_a_post(dataset):
    index, _vocab = dataset
    train, held = stream(dataset), stream(dataset, "heldout")
    unlabelled = {i for i, tags in enumerate(index.hashtags) if tags == ["qzxv"]}
    assert train.unlabelled == len(unlabelled) == 1
    assert unlabelled and not unlabelled & (set(train.candidates) | set(held.candidates))
    assert set(train.candidates) | set(held.candidates) == set(range(len(index))) - unlabelled
    assert not {index.post_keys[i] for i in train.candidates} & {index.post_keys[i] for i in held.candidates}
    assert set(train.order(0)) <= set(train.candidates)


def test_items_carry_normalised_images_and_one_over_k_targets(dataset):
    index, vocab = dataset
    batch = next(iter(make_loader(stream(dataset), 0)))
    assert batch["image"].shape == (3, 3, 16, 16) and batch["target"].shape == (3, len(vocab))
    for i, target in zip(batch["index"].tolist(), batch["target"]):
        k = len(vocab.labels_for(index.hashtags[i]))
        assert target.sum().item() == pytest.approx(1.0) and (target > 0).sum() == k


def test_rank_positions_are_disjoint_equal_and_cover_the_order():
    for length, world in [(12, 2), (13, 2), (10, 3)]:
        parts = [rank_positions(length, r, world) for r in range(world)]
        assert len({len(p) for p in parts}) == 1 and len(parts[0]) == length // world
        flat = np.concatenate(parts)
        assert len(set(flat)) == len(flat)
        if length % world == 0:
            assert sorted(flat) == list(range(length))
    with pytest.raises(ValueError, match="rank"):
        rank_positions(10, 2, 2)


def test_two_rank_streams_partition_the_single_rank_order(dataset):
    single = stream(dataset)
    ranks = [stream(dataset, rank=r, world_size=2) for r in range(2)]
    per_rank = [np.concatenate(s.batches(0)) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == 6
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(np.concatenate(per_rank)) == sorted(np.concatenate(single.batches(0)))
    # Positions index the same global order on every rank, so the samples match too.
    assert np.array_equal(ranks[0].order(0), single.order(0))
    got = sorted(int(b["index"][j]) for s in ranks for b in make_loader(s, 0) for j in range(len(b["index"])))
    assert got == sorted(single.order(0).tolist())


def test_worker_batches_follow_the_dataloader_round_robin():
    all_batches = split_batches(np.arange(20), 3, drop_last=True)
    assert len(all_batches) == 6
    mine = [worker_batches(all_batches, 2, w, 3) for w in range(3)]
    merged = [mine[j % 3][j // 3] for j in range(4)]
    assert [b.tolist() for b in merged] == [b.tolist() for b in all_batches[2:]]


def test_two_workers_yield_the_same_batches_as_none(dataset):
    s = stream(dataset, epoch_length=18)
    assert_same_batches(batches(make_loader(s, 2)), batches(make_loader(s, 0)))


def test_set_position_resumes_with_exactly_the_remaining_batches(dataset):
    s = stream(dataset)
    s.set_position(1, 0)
    full = batches(make_loader(s, 0))
    assert len(full) == 4
    s.set_position(1, 3)  # a fresh stream would be equally good: nothing else carries state
    resumed = stream(dataset)
    resumed.set_position(1, 3)
    assert_same_batches(batches(make_loader(resumed, 0)), full[3:])
    resumed.set_position(1, 1)
    assert_same_batches(batches(make_loader(resumed, 2)), full[1:])
    s.set_position(0, 0)
    assert [b[0] for b in batches(make_loader(s, 0))] != [b[0] for b in full]  # epochs differ


def test_heldout_yields_each_sample_once_in_index_order_across_ranks(dataset):
    held = stream(dataset, "heldout", batch_size=2)
    assert np.all(np.diff(held.candidates) > 0)
    single = [i for b in make_loader(held, 0) for i in b["index"].tolist()]
    assert single == held.candidates.tolist()
    parts = [[i for b in make_loader(stream(dataset, "heldout", batch_size=2, rank=r, world_size=2), 0)
              for i in b["index"].tolist()] for r in range(2)]
    assert sorted(parts[0] + parts[1]) == single and not set(parts[0]) & set(parts[1])


def synthetic(counts: list[int]) -> tuple[SampleIndex, object]:
    """One single-label post (one image, never read) per count unit of each word."""
    words = ["dog", "car", "tree", "ball", "boat", "house"][: len(counts)]
    tags = [[w] for w, c in zip(words, counts) for _ in range(c)]
    n = len(tags)
    zeros = np.zeros(n, dtype=np.int64)
    index = SampleIndex(Path("."), "v", ["s.tar"], np.zeros(n, dtype=np.int32), [str(i) for i in range(n)],
                        zeros, zeros, zeros, zeros, [f"s/{i}" for i in range(n)], tags)
    vocab = build_vocab(((f"s/{i}", t) for i, t in enumerate(tags)), VocabConfig(min_count=1))
    return index, vocab


@pytest.mark.parametrize("mode, power", [("sqrt", 0.5), ("none", 1.0), ("inverse", 0.0)])
def test_drawn_label_frequencies_follow_the_sampling_law(mode, power):
    counts = [400, 100, 44, 25, 16]  # Zipf-like
    index, vocab = synthetic(counts)
    s = HashtagStream(index, vocab, train_transform(DataConfig()),
                      StreamConfig(epoch_length=20000, batch_size=8, seed=3, sampling=mode, holdout_fraction=0.0),
                      rank=0, world_size=1)
    observed, expected = s.label_frequencies(epochs=2)
    law = np.array(counts, dtype=float) ** power
    by_label = np.array([law[["dog", "car", "tree", "ball", "boat"].index(l.label.split(".")[0])] for l in vocab.labels])
    assert np.allclose(expected, by_label / by_label.sum())
    assert np.allclose(observed / observed.sum(), expected, rtol=0.08)


def test_stream_config_is_validated():
    with pytest.raises(ValueError, match="sampling"):
        StreamConfig(epoch_length=10, batch_size=2, sampling="log")
    with pytest.raises(ValueError, match="split"):
        StreamConfig(epoch_length=10, batch_size=2, split="val")
    with pytest.raises(ValueError, match="epoch_length"):
        StreamConfig(epoch_length=0, batch_size=2)


def test_workers_send_uint8_pixels_and_the_batch_is_normalised_once(dataset):
    """Items hold uint8 pixels; the batch equals the one-image transform of each sample with its own seed."""
    s = stream(dataset)
    order, positions = s.order(0), s.batches(0)[0]
    item = s.item(int(order[positions[0]]), int(positions[0]))
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 16, 16)
    batch = next(iter(make_loader(s, 0)))
    expected = torch.stack([s.transform(s.index.read_jpeg(int(order[p])), np.random.default_rng([5, 0, int(p)]))
                            for p in positions])
    assert batch["image"].dtype == torch.float32 and torch.equal(batch["image"], expected)


def test_a_loader_asked_not_to_normalise_ships_uint8_that_its_normalizer_finishes_alike(dataset):
    s = stream(dataset)
    raw = next(iter(make_loader(s, 0, normalize=False)))
    done = next(iter(make_loader(s, 0)))
    assert raw["image"].dtype == torch.uint8
    assert torch.equal(batch_normalizer(s)(raw["image"]), done["image"])
    assert torch.equal(raw["target"], done["target"])
