"""The starter bundle: hashtag suggestions and alt text on day one, from the packaged ImageNet classifier.

The packaged EfficientNet-Lite0 (``tagsight.models.pretrained``) predicts the 1,000 ImageNet classes,
each a WordNet noun synset; a vocabulary's labels are WordNet synsets too. A label's probability
is the sum of the softmax probabilities of the ImageNet classes it subsumes (the class itself, or
any class it is a hypernym of: ``dog.n.01`` sums 118 dog breeds), so the "head" outputs
``log P(label)`` (``StarterHead``). Labels that subsume no ImageNet class can never be said
(``reason: no_imagenet_class``).

It is calibrated like any other bundle (``calibrate_starter``), on labelled photos the user has:
class folders whose names are vocabulary labels (``tench.n.01``), WordNet ids (``n01440764``) or
hashtags the vocabulary maps. A photo is a positive of every vocabulary label that subsumes its
folder's synset; a photo whose folder no vocabulary label subsumes is an **unseen** photo, as are
``cfg.unseen`` and the rendered pictures: negatives of every label, and what the open-set guard
(``tagsight.apps.openset``, ``max_logit`` by default: the best label's log probability) is fitted on.
Platt scaling ``sigmoid(a * log P + b)``, per-label
thresholds for the target precision and the guard are chosen on the fit half of a seeded split and
measured on the check half, exactly as ``tagsight.apps.calibration`` does for a run.

On disk the bundle is ``bundle.json`` (backbone ``efficientnet-lite0``), ``starter.json`` (the
vocabulary's labels and the ImageNet classes each sums) and ``calibration.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from tagsight import __version__
from tagsight.apps.calibrators import CALIBRATION_FILE, FORMAT, PlattScaling
from tagsight.apps.embedder import Embedder
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.models.pretrained import EFFICIENTNET_LITE0
from tagsight.tags.imagenet import (  # noqa: F401  (imagenet_wnids: re-exported for callers of the starter)
    ancestors, imagenet_members, imagenet_wnids, member_matrix, synset_of)
from tagsight.tags.vocab import Vocabulary

if TYPE_CHECKING:   # calibrating a starter is fitting; loading one (serving) needs only the calibrators
    from tagsight.apps.calibration import CalibrationConfig

log = logging.getLogger(__name__)

STARTER_FILE = "starter.json"
STARTER_FORMAT = 1
FLOOR = 1e-12   # probability given to a label that subsumes no ImageNet class
# The ImageNet classifier's outputs are meaningful: the best label's log probability is the guard's score
# (docs/apps.md measures it); a run's weak hashtag head needs the knn score instead.
STARTER_OPEN_SET_SCORE = "max_logit"


class StarterHead(nn.Module):
    """ImageNet logits -> ``log P(label)``, a label's probability being the sum over the classes it subsumes."""

    members: torch.Tensor   # a registered buffer [1000, labels]

    def __init__(self, classifier: nn.Linear, members: list[list[int]]) -> None:
        super().__init__()
        if classifier.out_features != 1000:
            raise ValueError(f"the starter needs the 1,000-class ImageNet classifier, got {classifier.out_features}")
        self.classifier = classifier
        self.register_buffer("members", member_matrix(members, classifier.out_features))
        self.in_features, self.out_features = classifier.in_features, len(members)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.classifier(features.float()), dim=1)
        return torch.log((probs @ self.members).clamp_min(FLOOR))


def lite0_classifier() -> nn.Linear:
    """The packaged EfficientNet-Lite0's ImageNet classifier (1280 -> 1000)."""
    from tagsight.models.pretrained import efficientnet_lite0_model

    classifier = efficientnet_lite0_model(num_classes=1000).classifier
    if not isinstance(classifier, nn.Linear):
        raise TypeError(f"EfficientNet-Lite0's classifier is a {type(classifier).__name__}, not a Linear layer")
    return classifier.eval()


# -- labelled calibration photos -----------------------------------------------------------------


def folder_label(name: str, vocab: Vocabulary) -> Any:
    """The synset a class folder's name stands for: a WordNet id, a synset name or a hashtag the vocabulary maps."""
    synset = synset_of(name)
    if synset is None:
        found = vocab.labels_for([name])
        synset = synset_of(vocab.labels[found[0]].label) if len(found) == 1 else None
    if synset is None:
        raise ReasonError("unknown_class_folder", f"class folder {name!r} is neither a WordNet noun id "
                                                  "(n01440764), a synset name (tench.n.01) nor a hashtag of the "
                                                  "vocabulary")
    return synset


def folder_positives(classes: list[str], vocab: Vocabulary) -> np.ndarray:
    """``[classes, L]``: a folder is a positive of every label that is its synset or one of its hypernyms."""
    labels = [label.label for label in vocab.labels]
    out = np.zeros((len(classes), len(labels)), dtype=bool)
    for i, name in enumerate(classes):
        names = ancestors(folder_label(name, vocab))
        out[i] = [label in names for label in labels]
    return out


def labelled_photos(folder: Path, vocab: Vocabulary) -> tuple[list[str], list[Any], np.ndarray, int]:
    """``(names, images, positives [N, L], unreadable)`` of the class folders under ``folder``."""
    from tagsight.apps.calibration import read_unseen

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not classes:
        raise ReasonError("no_class_folders", f"{folder} has no class folders (one folder of photos per class)")
    table = folder_positives(classes, vocab)
    names, images, rows, unreadable = [], [], [], 0
    for c, name in enumerate(classes):
        these, imgs, bad = read_unseen([str(folder / name)])
        names += these
        images += imgs
        rows += [c] * len(these)
        unreadable += bad
    return names, images, table[np.asarray(rows, dtype=np.int64)], unreadable


# -- calibrating and loading ---------------------------------------------------------------------


def display_names(vocab: Vocabulary) -> list[str]:
    """Per label, the hashtag people wrote most often for it."""
    return ["#" + (max(label.members, key=lambda tag: label.members[tag]) if label.members else label.label.split(".")[0])
            for label in vocab.labels]


def _labelled_logits(folder: Path, vocab: Vocabulary, embedder: Embedder, head: StarterHead,
                     cfg: CalibrationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    from tagsight.apps.calibration import CHECK_PURPOSE
    from tagsight.data.index import unit_hash

    names, images, positives, unreadable = labelled_photos(folder, vocab)
    features = embedder.embed(images)
    with torch.no_grad():
        logits = head(torch.from_numpy(features)).double().numpy()
    check = np.asarray([unit_hash(f"labelled\x00{Path(n).parent.name}/{Path(n).name}", cfg.seed, CHECK_PURPOSE)
                        < cfg.check_fraction for n in names])
    in_vocab = positives.any(axis=1)
    counts = {"labelled": len(names), "labelled_unreadable": unreadable, "in_vocabulary": int(in_vocab.sum()),
              "labelled_outside_vocabulary": int((~in_vocab).sum())}
    return logits, features, positives, check, counts


def calibrate_starter(vocab_path: str | Path, bundle_dir: str | Path, labelled: str | Path,
                      cfg: CalibrationConfig | None = None, device: str = "cpu") -> dict[str, Any]:
    """Write a starter bundle for ``vocab_path`` calibrated on the class folders under ``labelled``."""
    from tagsight.apps.calibration import CalibrationConfig, Rows, open_world_concepts, summarise, unseen_logits

    cfg = cfg or CalibrationConfig(open_set_score=STARTER_OPEN_SET_SCORE)
    vocab, bundle_dir = Vocabulary.load(vocab_path), Path(bundle_dir)
    from tagsight.eval.backbones import load_backbone

    embedder = Embedder(load_backbone(EFFICIENTNET_LITE0), device, cfg.batch_size)
    members = imagenet_members([label.label for label in vocab.labels])
    head = StarterHead(lite0_classifier(), members).eval()
    logits, features, positives, check, labelled_counts = _labelled_logits(Path(labelled), vocab, embedder, head, cfg)
    counts: dict[str, Any] = dict(labelled_counts)
    unseen = np.asarray(~positives.any(axis=1))
    if cfg.unseen or cfg.rendered_unseen:
        extra = unseen_logits(cfg.unseen, embedder, head, cfg.seed, cfg.check_fraction, cfg.rendered_unseen)
        counts.update(unseen=len(extra.paths), unseen_unreadable=extra.unreadable)
        logits, check = np.concatenate([logits, extra.logits]), np.r_[check, extra.check]
        features = np.concatenate([features, extra.features])
        positives = np.concatenate([positives, np.zeros((len(extra.paths), positives.shape[1]), bool)])
        unseen = np.r_[unseen, np.ones(len(extra.paths), bool)]
    counts.update(fit=int((~check).sum()), check=int(check.sum()), concepts_measured_on="class folders")
    calibrator = PlattScaling(loss="bce").fit(logits[~check], positives[~check])
    rows = Rows(calibrator.probabilities(logits), logits, features, positives, check, unseen)
    concepts, open_set, guard = open_world_concepts(rows, vocab, cfg, np.asarray([bool(m) for m in members]))
    for c, rec in enumerate(concepts):
        if not members[c]:
            rec["reason"] = "no_imagenet_class"
        rec["imagenet_classes"] = len(members[c])
    result = {"format": FORMAT, "tagsight_version": __version__, "run": None, "starter": True,
              "backbone_fingerprint": embedder.fingerprint, "vocab_version": vocab.version, "config": asdict(cfg),
              "heldout": counts, "calibrator": calibrator.to_dict(),
              "metrics": {"fit": calibrator.evaluate(logits[~check], positives[~check]),
                          "check": calibrator.evaluate(logits[check], positives[check])},
              "display": display_names(vocab), "summary": summarise(concepts, cfg.target_precision),
              "concepts": concepts, "open_set": open_set}
    _write_bundle(bundle_dir, vocab, members, result)
    if guard is not None:
        guard.save_bank(bundle_dir)
    return result


def _write_bundle(bundle_dir: Path, vocab: Vocabulary, members: list[list[int]], result: dict[str, Any]) -> None:
    from tagsight.apps.bundle import init_bundle

    init_bundle(bundle_dir, EFFICIENTNET_LITE0)
    starter = {"format": STARTER_FORMAT, "backbone": EFFICIENTNET_LITE0, "vocab_version": vocab.version,
               "labels": [label.label for label in vocab.labels], "imagenet_members": members}
    atomic_write_text(bundle_dir / STARTER_FILE, json.dumps(starter) + "\n")
    atomic_write_text(bundle_dir / CALIBRATION_FILE, json.dumps(result, indent=1) + "\n")
    log.info("starter bundle %s: %d of %d labels may appear in alt text", bundle_dir,
             result["summary"]["alt_text_concepts"], len(vocab))


def load_starter_head(bundle_dir: str | Path) -> StarterHead:
    """The starter head of a bundle (``starter.json``); ReasonError when it is malformed."""
    path = Path(bundle_dir) / STARTER_FILE
    data = json.loads(path.read_text())
    if data.get("format") != STARTER_FORMAT or len(data.get("imagenet_members", [])) != len(data.get("labels", [])):
        raise ReasonError("bad_starter", f"{path}: unsupported format or labels and members differ in number")
    return StarterHead(lite0_classifier(), data["imagenet_members"]).eval()


def is_starter(bundle_dir: str | Path) -> bool:
    return (Path(bundle_dir) / STARTER_FILE).is_file()


def add_starter_apps(bundle: Any) -> None:
    """Add hashtags and alt-text to a loaded starter ``Bundle`` (its backbone must be the packaged Lite0)."""
    from tagsight.apps.alt_text import AltTextApp
    from tagsight.apps.hashtags import HashtagsApp

    if bundle.backbone_spec != EFFICIENTNET_LITE0:
        raise ReasonError("bad_starter", f"{bundle.root}: a starter bundle's backbone is {EFFICIENTNET_LITE0!r}, "
                                         f"not {bundle.backbone_spec!r}")
    head = load_starter_head(bundle.root)
    for cls in (HashtagsApp, AltTextApp):
        bundle.apps[cls.name] = cls.load(bundle.root, bundle.embedder, head)
