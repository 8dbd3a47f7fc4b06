"""Prompts and posts -> token ids through the dataset's vocabulary (the same normalisation and lookup as labels).

A prompt is split into items at whitespace and commas: ``"#beach #sunset, dog"`` -> ``#beach``,
``#sunset``, ``dog``. Every item, hashtag or caption word, goes through ``Vocabulary.labels_for``
(``normalize_hashtag`` then the vocabulary's lookup, which merges spellings into one WordNet label),
so ``#Beach``, ``#beaches`` (when the vocabulary merged it) and the caption word ``beach`` give the
same token. Token ids: ``0`` padding, ``1`` the null token (no conditioning: classifier-free guidance
and posts without a known label), ``2 + label`` for each vocabulary label. A training sample's tokens
are its hashtags' labels followed by the labels of its reviewer captions' words, deduplicated, at
most ``max_tokens``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from tagsight.fsio import ReasonError
from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

PAD, NULL, OFFSET = 0, 1, 2
_SPLIT = re.compile(r"[\s,]+")


def prompt_items(text: str) -> list[str]:
    """The items of a prompt or caption, as written (``#`` kept)."""
    return [item for item in _SPLIT.split(text or "") if item]


@dataclass(frozen=True)
class Encoded:
    """A prompt's token ids (no padding) and which of its items were known and unknown, as written."""

    ids: tuple[int, ...]
    used: tuple[str, ...]
    unknown: tuple[str, ...]


class TokenTable:
    """Vocabulary labels as tokens: encode prompts (checked) and posts (hashtags + captions) to padded id rows."""

    def __init__(self, vocab: Vocabulary, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.vocab, self.max_tokens = vocab, max_tokens

    def __len__(self) -> int:
        """Embedding rows needed: padding, null and one per label."""
        return len(self.vocab) + OFFSET

    def encode_items(self, items: Iterable[str]) -> Encoded:
        ids: list[int] = []
        used: list[str] = []
        unknown: list[str] = []
        for item in items:
            labels = self.vocab.labels_for([item])
            (used if labels else unknown).append(item)
            ids += [OFFSET + label for label in labels if OFFSET + label not in ids]
        return Encoded(tuple(ids), tuple(used), tuple(unknown))

    def encode_prompt(self, prompt: str) -> Encoded:
        """A prompt's tokens; warns naming unknown items, raises ``ReasonError`` when no item is known."""
        encoded = self.encode_items(prompt_items(prompt))
        if not encoded.ids:
            examples = ", ".join("#" + (max(label.members, key=label.members.__getitem__) if label.members
                                        else label.label) for label in self.vocab.labels[:8])
            raise ReasonError("no_known_token", f"no item of the prompt {prompt!r} is in the model's vocabulary "
                                                f"({len(self.vocab)} labels, e.g. {examples})")
        if encoded.unknown:
            log.warning("prompt %r: %d unknown item(s) ignored: %s", prompt, len(encoded.unknown),
                        ", ".join(encoded.unknown))
        if len(encoded.ids) > self.max_tokens:
            log.warning("prompt %r has %d known labels; the model reads the first %d", prompt, len(encoded.ids),
                        self.max_tokens)
        return encoded

    def sample_ids(self, hashtags: Sequence[str], captions: Sequence[str] = ()) -> list[int]:
        """A training sample's ids: its hashtags' labels, then its captions' words' labels (deduplicated)."""
        ids = [OFFSET + label for label in self.vocab.labels_for(hashtags)]
        for caption in captions:
            ids += [i for i in self.encode_items(prompt_items(caption)).ids if i not in ids]
        return ids

    def row(self, ids: Sequence[int]) -> torch.Tensor:
        """int64 ``[max_tokens]``: the first ``max_tokens`` ids (the null token when there is none), then padding."""
        ids = list(ids)[: self.max_tokens] or [NULL]
        return torch.tensor(ids + [PAD] * (self.max_tokens - len(ids)), dtype=torch.int64)
