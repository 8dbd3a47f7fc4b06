"""Calibrated hashtag probabilities and the concepts alt text may name, fitted on a run's held-out posts.

Two calibrators (``CALIBRATORS``), fitted by L-BFGS on held-out logits ``z [N, L]``:

* ``temperature`` (Guo et al. 2017): ``p = softmax(z / T)``, one ``T > 0`` minimising the
  cross-entropy against the 1/k hashtag target. ``p_c`` is the share of the post's hashtags that
  are ``c``; top-1 ECE measures it (confidence = max p, correct = the top label is a positive).
* ``platt`` (Platt 1999), the default: ``p_c = sigmoid(a * u_c + b)`` with ``u = log_softmax(z)``
  for a softmax-trained head (``u = z`` for BCE), one ``(a, b)`` shared by all labels, minimising
  the binary cross-entropy of "label c is among the post's hashtags". ``p_c`` is then the
  probability that the label applies, which is what abstaining and alt-text thresholds need.
  ECE is the binary reliability over all (post, label) pairs.

Both report NLL and ECE (15 equal-width bins) before (the raw softmax, or sigmoid for BCE) and after.

``calibrate_run`` takes the run's held-out posts (the ``SampleIndex.holdout`` split the run never
trained on; posts with at least one vocabulary label; tombstoned posts left out), splits them by a
seeded post hash into a ``fit`` half (fit the calibrator, choose thresholds) and a ``check`` half
(measure them), and for every label chooses the lowest calibrated-probability threshold whose
precision on the fit half reaches ``target_precision`` (``tagsight.apps.thresholds``). Alt text
may name exactly the labels that have one. The result is ``calibration.json`` of the bundle.

With ``verified`` (a verified-labels file, ``tagsight.apps.verified``), thresholds are chosen and
measured against the labels people checked instead of the hashtags, on the held-out posts that have
a verified row (those without any vocabulary hashtag included: alt text describes them too), and
only the concepts the file verifies may appear in alt text. The calibrator is
still fitted on the hashtags of the held-out posts that have a vocabulary label (it estimates how
likely a hashtag is; the threshold decides what is precise enough to say).

With ``heldout_dataset`` (another ingested dataset, e.g. photos kept back for calibration), every post
of that dataset stands in for the run's held-out split, except the posts whose media duplicate one of
the run's training dataset (exact SHA-256 or pHash near-duplicate, ``tagsight.eval.decontaminate``),
which are left out and counted as ``in_training_pool``.

With photos of nothing in the vocabulary (``unseen`` files and folders, plus ``rendered_unseen``
pictures drawn by ``tagsight.datasets.synthetic.render_unseen``), split into the same two halves, the
alt-text concepts are chosen in the open world (``open_world_concepts``): those photos are negatives of
every label, and an open-set guard (``tagsight.apps.openset``) fitted on the unseen fit photos keeps
concepts off photos unlike the in-vocabulary ones. ``calibration.json`` then holds ``open_set``: the
guard and, per half, how many in-vocabulary and unseen photos pass it and end up with a concept.
"""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tagsight import __version__
from tagsight.apps.calibrators import (  # noqa: F401  (re-exported: the serving half of calibration)
    CALIBRATION_FILE, CALIBRATORS, ECE_BINS, FORMAT, Calibrator, PlattScaling, TemperatureScaling,
    calibrator_from_dict, concept_name, expected_calibration_error, load_calibration, log_softmax, presence,
    raw_probabilities, sigmoid, softmax)
from tagsight.apps.embedder import Embedder, embed_samples
from tagsight.apps.openset import SCORES, OpenSetGuard, fit_guard, make_bank, pass_rate
from tagsight.apps.run import Run, load_run, post_authors
from tagsight.apps.thresholds import operating_point, threshold_for_precision
from tagsight.apps.verified import VerifiedLabels, load_verified
from tagsight.data.index import SampleIndex, unit_hash
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.schema.catalog import manifest_version
from tagsight.storage import is_url, local_folder, local_input, mirror_origin, write_bytes
from tagsight.privacy.tombstones import Tombstones, load_tombstones
from tagsight.tags.normalize import normalize_hashtag
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)
CHECK_PURPOSE = "calibration"   # unit_hash purpose of the check half: drawn apart from the training hold-out

# -- calibrating a run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationConfig:
    """``target_precision`` of alt-text concepts, ``min_support`` predictions a threshold needs on the fit
    half, ``z`` for a Wilson lower bound (0 = raw precision), ``check_fraction`` of held-out posts kept to
    measure the thresholds, ``method`` a name in ``CALIBRATORS``."""

    method: str = "platt"
    target_precision: float = 0.8
    min_support: int = 5
    z: float = 1.645
    check_fraction: float = 0.5
    seed: int = 0
    batch_size: int = 64
    verified: str | None = None
    heldout_dataset: str | None = None   # calibrate on every post of this other dataset, not the run's held-out split
    unseen: tuple[str, ...] = ()         # image files/folders showing none of the vocabulary's concepts
    rendered_unseen: int = 300           # plus this many rendered ones (empty scenes, textures, patterns, text, UI)
    max_unseen_rate: float = 0.025       # share of unseen fit photos the open-set guard may let through
    open_set_score: str = "knn"          # a name in tagsight.apps.openset.SCORES

    def __post_init__(self) -> None:
        if self.rendered_unseen < 0:
            raise ValueError(f"rendered_unseen must be >= 0, got {self.rendered_unseen}")
        if not 0 <= self.max_unseen_rate < 1:
            raise ValueError(f"max_unseen_rate must be in [0, 1), got {self.max_unseen_rate}")
        if self.open_set_score not in SCORES:
            raise ValueError(f"unknown open-set score {self.open_set_score!r} (known: {sorted(SCORES)})")
        if isinstance(self.unseen, (str, Path)):
            raise ValueError("unseen must be a sequence of paths, not one string")
        if self.method not in CALIBRATORS:
            raise ValueError(f"unknown calibration method {self.method!r} (known: {CALIBRATORS.names()})")
        if not 0 < self.target_precision <= 1:
            raise ValueError(f"target_precision must be in (0, 1], got {self.target_precision}")
        if self.min_support < 1 or self.z < 0 or self.batch_size < 1:
            raise ValueError(f"min_support and batch_size must be >= 1 and z >= 0, got {self}")
        if not 0 < self.check_fraction < 1:
            raise ValueError(f"check_fraction must be in (0, 1), got {self.check_fraction}")


@dataclass
class HeldOut:
    """Logits and targets of the held-out posts used, with the fit / check split."""

    logits: np.ndarray
    targets: np.ndarray
    check: np.ndarray            # bool per row: in the check half
    counts: dict[str, int | str]   # photo counts, and what the concepts were measured on
    post_keys: list[str]
    labelled: np.ndarray         # bool per row: has a vocabulary label (rows without one are kept for verified labels)
    features: np.ndarray | None = None   # backbone features per row (the open-set guard's knn bank)


def heldout_rows(run: Run, index: SampleIndex, vocab: Vocabulary, tombstones: Tombstones,
                 authors: dict[str, str], in_pool: dict[str, Any] | None = None,
                 keep_unlabelled: bool = False) -> tuple[np.ndarray, dict[str, int]]:
    """Sample rows of the held-out posts that carry a vocabulary label and are not tombstoned.

    ``keep_unlabelled`` keeps the posts without a vocabulary label too (still counted as
    ``no_vocab_label``, and not in ``used``): alt text is said of them as well, so verified labels
    measure concepts on them.

    Without ``in_pool`` these are the run's held-out split of ``index``; with it (post key -> the training
    pool's media it duplicates), ``index`` is a calibration dataset apart from the run's: every post of it,
    less those ``in_pool`` names (counted as ``in_training_pool``).
    """
    held = (index.holdout(run.config.data.holdout_fraction, run.config.seed) if in_pool is None
            else np.ones(len(index), dtype=bool))
    # SampleIndex.build already leaves forgotten samples out (index.forgotten); the check below is a second guard.
    rows, counts = [], Counter(heldout_samples=int(held.sum()), tombstoned=index.forgotten, used=0)
    for i in np.flatnonzero(held):
        key = index.post_keys[i]
        if tombstones.forgets(key, authors.get(key), index.hashtags[i]):
            counts["tombstoned"] += 1
        elif in_pool is not None and key in in_pool:
            counts["in_training_pool"] += 1
        elif not vocab.labels_for(index.hashtags[i]):
            counts["no_vocab_label"] += 1
            if keep_unlabelled:
                rows.append(int(i))
        else:
            rows.append(int(i))
            counts["used"] += 1
    return np.asarray(rows, dtype=np.int64), dict(counts)


def heldout_logits(run: Run, embedder: Embedder, index: SampleIndex,
                   rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backbone features and hashtag-head logits of the sample ``rows``."""
    features = embed_samples(index, rows, embedder, "held-out logits")
    with torch.no_grad():
        return features, run.head(torch.from_numpy(features)).double().numpy()


def load_heldout(run: Run, embedder: Embedder, vocab: Vocabulary, cfg: CalibrationConfig) -> tuple[HeldOut, SampleIndex]:
    """The held-out posts' logits and targets: the run's held-out split, or ``cfg.heldout_dataset``'s posts."""
    dataset = local_folder(cfg.heldout_dataset, marker="manifest.json") if cfg.heldout_dataset else run.dataset_dir
    index = SampleIndex.build(dataset)
    tombstones = load_tombstones(dataset)
    in_pool = None if cfg.heldout_dataset is None else _posts_in_training_pool(run, dataset, index)
    rows, counts = heldout_rows(run, index, vocab, tombstones, post_authors(dataset), in_pool,
                                keep_unlabelled=cfg.verified is not None)
    if counts["used"] < 2:
        raise ReasonError("too_few_heldout", f"{run.run_dir}: {counts['used']} usable held-out posts ({counts})")
    targets = np.stack([vocab.targets(vocab.labels_for(index.hashtags[i])) for i in rows])
    labelled = targets.sum(axis=1) > 0
    check = np.asarray([unit_hash(index.post_keys[i], cfg.seed, CHECK_PURPOSE) < cfg.check_fraction for i in rows])
    counts.update(fit=int((~check & labelled).sum()), check=int((check & labelled).sum()))
    keys = [index.post_keys[i] for i in rows]
    features, logits = heldout_logits(run, embedder, index, rows)
    return HeldOut(logits, targets, check, dict(counts), keys, labelled, features), index


def _posts_in_training_pool(run: Run, dataset: Path, index: SampleIndex) -> dict[str, Any]:
    """Posts of calibration dataset ``dataset`` whose media are in the run's training dataset (exact or near)."""
    from tagsight.eval.decontaminate import Pool, dataset_matches

    if manifest_version(dataset) == manifest_version(run.dataset_dir):
        raise ReasonError("same_dataset", f"{dataset} is the run's own dataset: leave out --heldout-dataset to "
                                          "calibrate on its held-out split")
    matches = dataset_matches(index, Pool.from_dataset(run.dataset_dir))
    log.info("calibration dataset %s: %d posts duplicate media of the run's dataset and are left out",
             dataset, len(matches))
    return matches


def display_spellings(index: SampleIndex, vocab: Vocabulary, tombstones: Tombstones,
                      authors: dict[str, str]) -> list[str]:
    """Per label, the hashtag spelling people wrote most often (over posts not tombstoned), with '#'."""
    counts: list[Counter[str]] = [Counter() for _ in vocab.labels]
    for key, tags in zip(index.post_keys, index.hashtags):
        if tombstones.forgets(key, authors.get(key), tags):
            continue
        for tag in tags:
            label = vocab.lookup.get(normalize_hashtag(tag))
            if label is not None:
                counts[label][tag.lstrip("#")] += 1
    return ["#" + (c.most_common(1)[0][0] if c else max(lab.members, key=lambda tag: lab.members[tag], default=lab.label))
            for c, lab in zip(counts, vocab.labels)]


def concept_positives(held: HeldOut, verified: VerifiedLabels | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows used [N], positives [N, L], eligible labels [L])``: hashtags, or the verified labels when given."""
    if verified is None:
        pos = presence(held.targets)
        return held.labelled.copy(), pos, np.ones(pos.shape[1], dtype=bool)
    has, pos = verified.positives(held.post_keys)
    if not has.any():
        raise ReasonError("no_verified_heldout", f"none of the {len(has)} held-out posts has a row in {verified.path}")
    return has, pos, verified.concepts


def choose_concepts(probs: np.ndarray, positives: np.ndarray, check: np.ndarray, vocab: Vocabulary,
                    cfg: CalibrationConfig, eligible: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One record per label: the threshold chosen on the fit half (or why none) and its check-half precision.

    ``positives`` [N, L] says which rows a label truly applies to; ``eligible`` [L] which labels may be said.
    """
    pos, fit = positives.astype(bool), ~check
    records = []
    for c, label in enumerate(vocab.labels):
        rec: dict[str, Any] = {"index": c, "label": label.label, "name": concept_name(label.label),
                               "fit_positives": int(pos[fit, c].sum()), "check_positives": int(pos[check, c].sum())}
        if eligible is not None and not eligible[c]:
            rec.update(alt_text=False, reason="not_verified")
            records.append(rec)
            continue
        chosen = threshold_for_precision(probs[fit, c], pos[fit, c], cfg.target_precision, cfg.min_support, cfg.z)
        if chosen is None:
            rec["alt_text"] = False
            rec["reason"] = "no_positive" if not rec["fit_positives"] else "target_not_reached"
        else:
            rec.update(alt_text=True, threshold=chosen.threshold, fit=chosen.to_dict(),
                       check=operating_point(probs[check, c], pos[check, c], chosen.threshold).to_dict())
        records.append(rec)
    return records


@dataclass
class Unseen:
    """Photos that show none of the vocabulary's concepts: head outputs and the fit / check split."""

    logits: np.ndarray
    check: np.ndarray
    paths: list[str]
    unreadable: int
    features: np.ndarray


def read_unseen(paths: tuple[str, ...] | list[str]) -> tuple[list[str], list[Any], int]:
    """``(names, RGB images, unreadable count)`` of the image files under ``paths`` (folders recursively; a file or
    folder at an fsspec URL is copied into the local cache, and its photos are named by their URLs, so that the
    fit/check split is the one of the same photos on local disk)."""
    from PIL import Image, UnidentifiedImageError

    from tagsight.apps.predict import expand

    names, images, unreadable = [], [], 0
    remote = any(is_url(p) for p in paths)
    for path in expand([local_input(p) for p in paths]):
        try:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
            names.append((mirror_origin(path) if remote else None) or str(path))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            log.warning("unseen photo %s left out: %s", path, exc)
            unreadable += 1
    return names, images, unreadable


def rendered_unseen(n: int, seed: int, size: int = 128) -> tuple[list[str], list[Any]]:
    """``n`` rendered pictures of nothing (``tagsight.datasets.synthetic.render_unseen``), kinds in turn."""
    from tagsight.datasets.synthetic import UNSEEN_KINDS, render_unseen

    g = np.random.default_rng([seed, 0x0BE7])
    kinds = [UNSEEN_KINDS[i % len(UNSEEN_KINDS)] for i in range(n)]
    return [f"rendered/{i:04d}-{k}" for i, k in enumerate(kinds)], [render_unseen(k, (size, size), g) for k in kinds]


def unseen_logits(paths: tuple[str, ...] | list[str], embedder: Embedder, head: torch.nn.Module,
                  seed: int, check_fraction: float, n_rendered: int = 0) -> Unseen:
    """Head outputs of the unseen photos (files under ``paths`` and ``n_rendered`` rendered pictures),
    split into fit / check halves by a seeded hash of the file name."""
    names, images, unreadable = read_unseen(paths) if paths else ([], [], 0)
    more_names, more_images = rendered_unseen(n_rendered, seed)
    names, images = names + more_names, images + more_images
    if len(names) < 2:
        raise ReasonError("no_unseen", f"{list(paths)}: {len(names)} readable unseen photos; the open-set guard "
                                       "needs some in each half")
    features = embedder.embed(images)
    with torch.no_grad():
        logits = head(torch.from_numpy(features)).double().numpy()
    check = np.asarray([unit_hash(f"unseen\x00{Path(n).parent.name}/{Path(n).name}", seed, CHECK_PURPOSE)
                        < check_fraction
                        for n in names])
    if check.all() or not check.any():
        check[: len(check) // 2] = ~check[0]
    return Unseen(logits, check, names, unreadable, features)


def concepts_said(probs: np.ndarray, concepts: list[dict[str, Any]]) -> np.ndarray:
    """Bool per row: at least one alt-text concept reaches its threshold (unfamiliar rows carry -1)."""
    said = np.zeros(len(probs), dtype=bool)
    for c in concepts:
        if c["alt_text"]:
            said |= probs[:, c["index"]] >= c["threshold"]
    return said


@dataclass
class Rows:
    """Everything the alt-text concepts are chosen from: one row per calibration photo."""

    probs: np.ndarray          # calibrated probabilities [N, L]
    logits: np.ndarray         # head outputs [N, L]
    features: np.ndarray | None  # backbone features [N, D] (needed by the knn guard)
    positives: np.ndarray      # [N, L] bool
    check: np.ndarray          # [N] bool: in the check half
    unseen: np.ndarray         # [N] bool: shows nothing of the vocabulary


def fit_open_set(rows: Rows, cfg: CalibrationConfig) -> tuple[OpenSetGuard, np.ndarray]:
    """The guard fitted on the unseen fit rows, and whether each row passes it (bank rows never match themselves)."""
    fit_unseen = rows.unseen & ~rows.check
    if cfg.open_set_score != "knn":
        base = OpenSetGuard(cfg.open_set_score, 0.0, 0.0)
        scores = base.scores(rows.logits)
    else:
        if rows.features is None:
            raise ValueError("the knn open-set score needs the calibration photos' features")
        members = np.flatnonzero(~rows.check & ~rows.unseen & rows.positives.any(axis=1))
        if not len(members):
            raise ReasonError("no_bank", "the knn open-set guard needs in-vocabulary photos in the fit half")
        bank, picked = make_bank(rows.features[members], cfg.seed)
        base = OpenSetGuard("knn", 0.0, 0.0, bank=bank)
        own = np.full(len(rows.probs), -1, dtype=np.int64)
        own[members[picked]] = np.arange(len(picked))
        scores = base.scores(rows.logits, rows.features, own)
    guard = fit_guard(scores[fit_unseen], cfg.max_unseen_rate, base=base)
    return guard, scores >= guard.threshold


def open_world_concepts(rows: Rows, vocab: Vocabulary, cfg: CalibrationConfig, eligible: np.ndarray | None = None
                        ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, OpenSetGuard | None]:
    """Concepts chosen with the unseen rows as negatives of every label, behind an open-set guard.

    Without unseen rows this is ``choose_concepts`` and no guard. With them, the guard is fitted on the
    unseen fit rows; a row it finds unfamiliar says no concept (its probabilities count as -1 when the
    thresholds are chosen), and the record measures both halves: how many in-vocabulary and unseen photos
    pass the guard, and how many unseen photos end up with a concept said (the open-world error).
    """
    if not rows.unseen.any():
        return choose_concepts(rows.probs, rows.positives, rows.check, vocab, cfg, eligible), None, None
    guard, familiar = fit_open_set(rows, cfg)
    effective = np.where(familiar[:, None], rows.probs, -1.0)
    concepts = choose_concepts(effective, rows.positives, rows.check, vocab, cfg, eligible)
    said = concepts_said(effective, concepts)
    record: dict[str, Any] = guard.to_dict()
    for half, part in (("fit", ~rows.check), ("check", rows.check)):
        record[half] = {"in_vocabulary_familiar": pass_rate(familiar[part & ~rows.unseen]),
                        "unseen_familiar": pass_rate(familiar[part & rows.unseen]),
                        "unseen_with_a_concept": pass_rate(said[part & rows.unseen]),
                        "in_vocabulary_with_a_concept": pass_rate(said[part & ~rows.unseen])}
    return concepts, record, guard


def summarise(concepts: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Counts and the pooled check-half precision of the alt-text concepts."""
    said = [c for c in concepts if c["alt_text"]]
    pred = sum(c["check"]["predicted"] for c in said)
    tp = sum(round(c["check"]["precision"] * c["check"]["predicted"]) for c in said if c["check"]["predicted"])
    measured = [c for c in said if c["check"]["predicted"]]
    return {"labels": len(concepts), "alt_text_concepts": len(said), "target_precision": target,
            "check_predictions": pred, "check_pooled_precision": round(tp / pred, 4) if pred else None,
            "check_concepts_measured": len(measured),
            "check_concepts_meeting_target": sum(c["check"]["precision"] >= target for c in measured)}


def _run_concepts(run: Run, embedder: Embedder, calibrator: Calibrator, held: HeldOut,
                  chosen: tuple[np.ndarray, np.ndarray, np.ndarray], vocab: Vocabulary, cfg: CalibrationConfig
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, OpenSetGuard | None]:
    """The alt-text concepts of a run, with ``cfg.unseen`` photos as negatives behind the open-set guard."""
    used, positives, eligible = chosen
    logits, check, positives = held.logits[used], held.check[used], positives[used]
    features = held.features[used] if held.features is not None else None
    if cfg.unseen or cfg.rendered_unseen:
        extra = unseen_logits(cfg.unseen, embedder, run.head, cfg.seed, cfg.check_fraction, cfg.rendered_unseen)
        held.counts.update(unseen=len(extra.paths), unseen_fit=int((~extra.check).sum()),
                           unseen_check=int(extra.check.sum()), unseen_unreadable=extra.unreadable)
        logits, check = np.concatenate([logits, extra.logits]), np.r_[check, extra.check]
        positives = np.concatenate([positives, np.zeros((len(extra.paths), positives.shape[1]), bool)])
        features = None if features is None else np.concatenate([features, extra.features])
    unseen = np.zeros(len(logits), dtype=bool)
    unseen[int(used.sum()):] = True
    rows = Rows(calibrator.probabilities(logits), logits, features, positives, check, unseen)
    return open_world_concepts(rows, vocab, cfg, eligible)


def calibrate_run(run_dir: str | Path, bundle_dir: str | Path | None = None, cfg: CalibrationConfig | None = None,
                  device: str = "cpu") -> dict[str, Any]:
    """Fit the calibrator and the alt-text thresholds on ``run_dir``'s held-out posts; write calibration.json."""
    cfg = cfg or CalibrationConfig()
    run = load_run(run_dir)
    bundle_dir = Path(bundle_dir or run.run_dir)
    vocab = run.vocab()
    embedder = Embedder(run.backbone, device, cfg.batch_size)
    held, index = load_heldout(run, embedder, vocab, cfg)
    fit, check = ~held.check, held.check
    fit_l, check_l = fit & held.labelled, check & held.labelled   # the calibrator learns from hashtags
    calibrator = CALIBRATORS.create(cfg.method, loss=run.loss).fit(held.logits[fit_l], held.targets[fit_l])
    verified = load_verified(cfg.verified, vocab) if cfg.verified else None
    used, positives, eligible = concept_positives(held, verified)
    held.counts.update(concepts_measured_on="verified labels" if verified else "hashtags",
                       concept_posts=int(used.sum()), concept_fit=int((used & fit).sum()),
                       concept_check=int((used & check).sum()))
    concepts, open_set, guard = _run_concepts(run, embedder, calibrator, held, (used, positives, eligible), vocab,
                                              cfg)
    tombstones, authors = load_tombstones(run.dataset_dir), post_authors(run.dataset_dir)
    if cfg.heldout_dataset:  # the spellings people use come from the run's own posts
        index = SampleIndex.build(run.dataset_dir)
    result: dict[str, Any] = {"format": FORMAT, "tagsight_version": __version__, "run": str(run.run_dir.resolve()),
              "backbone_fingerprint": embedder.fingerprint, "vocab_version": vocab.version,
              "config": asdict(cfg), "heldout": held.counts, "calibrator": calibrator.to_dict(),
              "metrics": {"fit": calibrator.evaluate(held.logits[fit_l], held.targets[fit_l]),
                          "check": calibrator.evaluate(held.logits[check_l], held.targets[check_l])},
              "display": display_spellings(index, vocab, tombstones, authors),
              "summary": summarise(concepts, cfg.target_precision), "concepts": concepts}
    if open_set is not None and guard is not None:
        result["open_set"] = open_set
        guard.save_bank(bundle_dir)
    atomic_write_text(bundle_dir / CALIBRATION_FILE, json.dumps(result, indent=1) + "\n")
    log.info("calibration (%s) written to %s: %d of %d labels may appear in alt text", cfg.method,
             bundle_dir / CALIBRATION_FILE, result["summary"]["alt_text_concepts"], len(vocab))
    return result


def plot_concept_precision(calibration: dict[str, Any], path: str | Path) -> str | Path:
    """Bar chart of each alt-text concept's check-half precision at its threshold, with the target line."""
    from tagsight.report.plots import new_figure

    said = [c for c in calibration["concepts"] if c["alt_text"] and c["check"]["predicted"]]
    said.sort(key=lambda c: -c["check"]["precision"])
    target = calibration["config"]["target_precision"]
    fig, ax = new_figure((6.4, max(2.5, 0.3 * len(said) + 1.2)))
    y = np.arange(len(said))
    colours = ["#4c78a8" if c["check"]["precision"] >= target else "#e45756" for c in said]
    ax.barh(y, [c["check"]["precision"] for c in said], color=colours)
    ax.set_yticks(y, labels=[f"{c['name']} (n={c['check']['predicted']})" for c in said], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(target, color="black", linestyle="--", linewidth=1, label=f"target {target:g}")
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("precision on the check half of the held-out posts")
    ax.set_title("alt-text concepts at their chosen thresholds", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    return write_bytes(path, png.getvalue())     # a local path, or an fsspec URL (one object put)
