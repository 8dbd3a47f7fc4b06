"""ImageNet-1k classes as WordNet synsets, and which of them a vocabulary label subsumes.

The packaged ImageNet classifier (``tagsight.models.pretrained``) predicts 1,000 classes, each a
WordNet noun synset; a vocabulary's labels are WordNet synsets too. A label subsumes an ImageNet class
when it is the class's synset or one of its hypernyms (instance hypernyms included): ``dog.n.01``
subsumes 118 dog breeds, ``tench.n.01`` only the tench. The starter bundle (``apps.starter``) and the
generator's prompt-adherence measure (``curate.judge.adherence``) both read labels through this mapping.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from tagsight.tags.wordnet import WNID, synset_of

__all__ = ["WNID", "ancestors", "imagenet_members", "imagenet_wnids", "member_matrix", "synset_of"]

@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k WordNet ids in the classifier's output order (timm's ImageNetInfo)."""
    from timm.data.imagenet_info import ImageNetInfo

    wnids = tuple(ImageNetInfo("imagenet-1k").label_names())
    if len(wnids) != 1000 or not all(WNID.match(w) for w in wnids):
        raise RuntimeError(f"timm's ImageNet-1k synsets look wrong ({len(wnids)} ids)")
    return wnids


def ancestors(synset: Any) -> set[str]:
    """The synset's name and the names of all its hypernyms (instance hypernyms included)."""
    names = {synset.name()}
    names.update(s.name() for s in synset.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))
    return names


def imagenet_members(labels: list[str]) -> list[list[int]]:
    """Per label (a synset name), the ImageNet class indices it subsumes."""
    members: list[list[int]] = [[] for _ in labels]
    where = {label: j for j, label in enumerate(labels)}
    for i, wnid in enumerate(imagenet_wnids()):
        synset = synset_of(wnid)
        for name in ancestors(synset) & where.keys() if synset is not None else ():
            members[where[name]].append(i)
    return members


def member_matrix(members: list[list[int]], classes: int = 1000) -> torch.Tensor:
    m = torch.zeros(classes, len(members), dtype=torch.float32)
    for j, rows in enumerate(members):
        m[rows, j] = 1.0
    return m
