"""The training input stream: shards -> resampled, augmented, labelled batches, exactly resumable.

Per epoch ``e`` the stream draws ``epoch_length`` sample indices with replacement, in proportion
to the vocabulary's sampling weights (numpy generator seeded by ``(seed, e)``), over the labelled
samples of the training side of the held-out split. That global *order* is the same on every rank;
rank ``r`` of ``W`` takes the positions ``r, r + W, ...`` truncated to ``epoch_length // W`` so
every rank has the same number of batches (no rank waits at a collective: no hang with uneven
shards). Within a rank, DataLoader worker ``w`` of ``K`` produces whole batches ``w, w + K, ...``,
so the DataLoader's round-robin returns the rank's batches in exact order whatever ``K`` is. Each
sample's augmentation generator is seeded by ``(seed, epoch, global position)``: a run resumed
with ``set_position(epoch, batches_done)`` yields exactly the batches, images included, that the
uninterrupted run would have yielded next.

The ``heldout`` split yields every labelled held-out sample once, in index order, split across
ranks by position the same way but not truncated (ranks may differ by one sample; evaluation does
no per-batch collective), the last batch possibly partial.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from tagsight.collectives import rank_world
from tagsight.data.index import SampleIndex
from tagsight.data.transforms import EncodedTransform
from tagsight.tags.sampling import SAMPLING_MODES, effective_distribution
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

SPLITS = ("train", "heldout")
Transform = Callable[[Image.Image, torch.Generator], torch.Tensor]
"""A decoded image and the generator that drives its augmentation -> one input tensor."""
Views = Union[torch.Tensor, dict[str, torch.Tensor]]
ViewTransform = Callable[[Image.Image, torch.Generator], Views]
"""As ``Transform``, or a dict of views (multi-crop: ``{"image": globals, "local": locals}``)."""
TransformT = TypeVar("TransformT", bound=ViewTransform)
"""What a ``PostStream`` is given: a ``Transform`` (an ``EncodedTransform`` is one) or a ``ViewTransform``."""


@dataclass(frozen=True)
class StreamConfig:
    """``epoch_length``: samples drawn per epoch over all ranks; ``batch_size``: per rank."""

    epoch_length: int
    batch_size: int
    seed: int = 0
    sampling: str = "sqrt"
    holdout_fraction: float = 0.1
    split: str = "train"

    def __post_init__(self) -> None:
        if self.epoch_length < 1:
            raise ValueError(f"epoch_length must be >= 1 sample, got {self.epoch_length}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling {self.sampling!r} is not one of {SAMPLING_MODES}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {self.holdout_fraction}")
        if self.split not in SPLITS:
            raise ValueError(f"split {self.split!r} is not one of {SPLITS}")


def draw_order(candidates: np.ndarray, weights: np.ndarray, epoch_length: int, seed: int, epoch: int) -> np.ndarray:
    """``epoch_length`` sample indices drawn with replacement from ``candidates`` with probability ∝ ``weights``."""
    total = float(weights.sum())
    if len(candidates) == 0 or total <= 0:
        raise ValueError("no labelled training sample to draw from: check the vocabulary and the held-out fraction")
    rng = np.random.default_rng([seed, epoch])
    return candidates[rng.choice(len(candidates), size=epoch_length, replace=True, p=weights / total)]


def rank_positions(length: int, rank: int, world_size: int, equal: bool = True) -> np.ndarray:
    """Positions ``rank, rank + W, ...`` of an order of ``length``; ``equal`` truncates to ``length // W``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    positions = np.arange(rank, length, world_size, dtype=np.int64)
    return positions[: length // world_size] if equal else positions


def split_batches(positions: np.ndarray, batch_size: int, drop_last: bool) -> list[np.ndarray]:
    """Consecutive batches of ``positions``; ``drop_last`` drops a final partial batch."""
    stop = len(positions) - len(positions) % batch_size if drop_last else len(positions)
    return [positions[i:i + batch_size] for i in range(0, stop, batch_size)]


def worker_batches(batches: Sequence[np.ndarray], start: int, worker: int, num_workers: int) -> list[np.ndarray]:
    """The batches worker ``worker`` of ``num_workers`` produces after the first ``start`` are done."""
    return list(batches[start + worker::num_workers])


def augmentation_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for one sample's augmentation generator, from (seed, epoch, global position)."""
    state = np.random.SeedSequence([seed, epoch, position]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def drawn_label_counts(order: np.ndarray, label_lists: Sequence[Sequence[int]], num_labels: int) -> np.ndarray:
    """How often each label appears among the samples of ``order`` (indices into ``label_lists``)."""
    labels = [label for i in order for label in label_lists[int(i)]]
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels).astype(np.float64)


class ResumableStream(IterableDataset[dict[str, Any]]):
    """A stream of items at exact positions: subclasses give ``order(epoch)`` (global sample indices),
    ``batches(epoch)`` (this rank's batches of positions) and ``item(index, position)``."""

    epoch: int = 0
    batches_done: int = 0

    def order(self, epoch: int) -> np.ndarray:
        raise NotImplementedError

    def batches(self, epoch: int) -> list[np.ndarray]:
        raise NotImplementedError

    def item(self, index: int, position: int) -> dict[str, Any]:
        raise NotImplementedError

    def set_position(self, epoch: int, batches_done: int) -> None:
        """Make the next iteration start after ``batches_done`` batches of ``epoch`` (a checkpoint's data position)."""
        if epoch < 0 or batches_done < 0:
            raise ValueError(f"epoch and batches_done must be >= 0, got {epoch} and {batches_done}")
        self.epoch, self.batches_done = epoch, batches_done

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        order = self.order(self.epoch)
        for batch in worker_batches(self.batches(self.epoch), self.batches_done, worker, workers):
            for position in batch:
                yield self.item(int(order[position]), int(position))


class PostStream(ResumableStream, Generic[TransformT]):
    """The samples of one split of a dataset in a resumable order, split across ranks and workers.

    The base of every training stream: it holds the index, vocabulary, transform and config, maps
    hashtags to vocabulary labels, chooses the split's candidates (``eligible`` samples on this
    side of the held-out split), draws the epoch's order in proportion to ``draw_weights`` and
    splits it into this rank's batches. A stream says which samples are eligible, how they are
    weighted and what one item is (``item``).
    """

    def __init__(self, index: SampleIndex, vocab: Vocabulary, transform: TransformT,
                 cfg: StreamConfig, rank: int | None = None, world_size: int | None = None) -> None:
        super().__init__()
        self.index, self.vocab, self.transform, self.cfg = index, vocab, transform, cfg
        default_rank, default_world = rank_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, {self.world_size})")
        self.label_lists = _label_lists(index, vocab)
        self.label_weights = _label_weights(index, vocab)
        self.candidates = self._select_split()
        self.weights = self.draw_weights()
        self.epoch, self.batches_done = 0, 0

    def labelled_mask(self) -> np.ndarray:
        """Boolean mask over the index: samples with at least one vocabulary label."""
        return np.fromiter((bool(labels) for labels in self.label_lists), dtype=bool, count=len(self.label_lists))

    def eligible(self) -> np.ndarray:
        """Samples this stream may draw before the held-out split: the labelled ones unless a stream says otherwise."""
        return self.labelled_mask()

    def draw_weights(self) -> np.ndarray:
        """Drawing weights of ``self.candidates``: uniform unless a stream says otherwise."""
        return np.ones(len(self.candidates), dtype=np.float64)

    def _select_split(self) -> np.ndarray:
        eligible = self.eligible()
        held = self.index.holdout(self.cfg.holdout_fraction, self.cfg.seed)
        side = held if self.cfg.split == "heldout" else ~held
        chosen = np.flatnonzero(eligible & side)
        self.unlabelled = int((~self.labelled_mask()).sum())
        log.info("%s split: %d samples; %d of %d samples excluded for having no vocabulary label",
                 self.cfg.split, len(chosen), int((~eligible).sum()), len(eligible))
        if len(chosen) == 0:
            raise ValueError(f"the {self.cfg.split} split has no eligible sample (holdout_fraction="
                             f"{self.cfg.holdout_fraction}, {len(self.vocab)} labels)")
        return chosen

    def order(self, epoch: int) -> np.ndarray:
        """The global order of sample indices of ``epoch`` (identical on every rank)."""
        if self.cfg.split == "heldout":
            return self.candidates
        return draw_order(self.candidates, self.weights, self.cfg.epoch_length, self.cfg.seed, epoch)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of ``epoch`` as arrays of global positions in ``order(epoch)``."""
        train = self.cfg.split == "train"
        positions = rank_positions(len(self.order(epoch)), self.rank, self.world_size, equal=train)
        return split_batches(positions, self.cfg.batch_size, drop_last=train)

    @property
    def batches_per_epoch(self) -> int:
        return len(self.batches(0))


class HashtagStream(PostStream[Transform]):
    """Labelled samples of a dataset as ``{"image", "target", "index"}`` items, in resumable order."""

    def draw_weights(self) -> np.ndarray:
        """Drawing weights of ``self.candidates``: the vocabulary's resampling weights."""
        return self.vocab.sample_weights([self.label_lists[i] for i in self.candidates], self.cfg.sampling)

    def item(self, index: int, position: int) -> dict[str, Any]:
        """One sample decoded, transformed with its own seeded generator, and its 1/k target.

        An ``EncodedTransform`` (``tagsight.data.transforms``) gets the encoded bytes and a numpy
        generator seeded by (seed, epoch, position) and returns uint8 pixels, which ``collate``
        normalises per batch; any other ``(PIL image, torch.Generator) -> tensor`` callable gets a
        lazily opened image and a torch generator seeded by ``augmentation_seed``.
        """
        if isinstance(self.transform, EncodedTransform) and self.transform.accepts_encoded:
            rng = np.random.default_rng([self.cfg.seed, self.epoch, position])
            image = self.transform.pixels(self.index.read_jpeg(index), rng)
        else:
            generator = torch.Generator().manual_seed(augmentation_seed(self.cfg.seed, self.epoch, position))
            with Image.open(io.BytesIO(self.index.read_jpeg(index))) as img:
                image = self.transform(img, generator)
        target = torch.from_numpy(self.vocab.targets(self.label_lists[index], self.label_weights[index]))
        return {"image": image, "target": target, "index": index}

    def label_frequencies(self, epochs: int) -> tuple[np.ndarray, np.ndarray]:
        """(observed label counts over the global orders of epochs 0..epochs-1, expected share of each label)."""
        observed = sum(drawn_label_counts(self.order(e), self.label_lists, len(self.vocab)) for e in range(epochs))
        lists = [self.label_lists[i] for i in self.candidates]
        expected = effective_distribution(lists, self.weights, len(self.vocab))
        return np.asarray(observed, dtype=np.float64), expected


def _label_lists(index: SampleIndex, vocab: Vocabulary) -> list[list[int]]:
    """Vocabulary label ids of each sample's hashtags (computed once per distinct hashtag list)."""
    cache: dict[tuple[str, ...], list[int]] = {}
    out = []
    for tags in index.hashtags:
        key = tuple(tags)
        if key not in cache:
            cache[key] = vocab.labels_for(tags)
        out.append(cache[key])
    return out


def _label_weights(index: SampleIndex, vocab: Vocabulary) -> list[list[float] | None]:
    """Per-sample label weights from the index's hashtag weights (None: the 1/k target)."""
    weights = index.hashtag_weights or [None] * len(index)
    return [None if w is None else vocab.label_weights_for(tags, w) for tags, w in zip(index.hashtags, weights)]


def collate(items: list[dict[str, Any]], normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
            ) -> dict[str, torch.Tensor]:
    """Stack a list of items into a batch, key by key: tensors are stacked (images [B,3,S,S], targets [B,L],
    multi-crop views [B,V,3,S,S]), integers become an int64 tensor (indices [B]).

    uint8 image tensors are turned into floats by ``normalize`` (one op for the whole batch) when given.
    """
    batch = {key: torch.stack([it[key] for it in items]) if torch.is_tensor(items[0][key])
             else torch.tensor([it[key] for it in items], dtype=torch.int64) for key in items[0]}
    if normalize is not None:
        batch.update({k: normalize(v) for k, v in batch.items() if v.dtype == torch.uint8})
    return batch


def batch_normalizer(stream: PostStream[Any]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """What turns the stream's uint8 image batches into model inputs (None: its items are final already)."""
    return stream.transform.normalize_batch if isinstance(stream.transform, EncodedTransform) else None


def make_loader(stream: PostStream[Any], num_workers: int = 0, pin_memory: bool = False,
                normalize: bool = True) -> DataLoader[dict[str, Any]]:
    """A DataLoader over ``stream`` yielding the rank's batches in exact order for any ``num_workers``.

    With ``normalize=False`` image batches stay uint8 (a quarter of the bytes between processes and
    to the device) and the consumer applies ``batch_normalizer(stream)`` where they land: the Trainer
    does so on the GPU.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    finish = batch_normalizer(stream) if normalize else None
    return DataLoader(stream, batch_size=stream.cfg.batch_size, num_workers=num_workers,
                      collate_fn=functools.partial(collate, normalize=finish),
                      persistent_workers=False, pin_memory=pin_memory, drop_last=False)
