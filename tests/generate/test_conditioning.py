"""Prompts and posts -> tokens through the vocabulary: the same normalisation as labels, clear unknown-token errors."""

import logging

import pytest

from tagsight.fsio import ReasonError
from tagsight.generate.conditioning import NULL, OFFSET, PAD, TokenTable, prompt_items
from tagsight.tags.vocab import Label, Vocabulary


def vocab() -> Vocabulary:
    labels = [Label(0, "beach.n.01", "n09217230", "noun.object", "", {"beach": 5, "beaches": 2}, 7, 1.0),
              Label(1, "dog.n.01", "n02084071", "noun.animal", "", {"dog": 9, "puppy": 3}, 12, 1.0)]
    return Vocabulary("v1", {"sampling": "sqrt"}, labels, {"beach": 0, "beaches": 0, "dog": 1, "puppy": 1})


def test_prompt_items_split_at_spaces_and_commas():
    assert prompt_items("#beach #sunset, dog  ") == ["#beach", "#sunset", "dog"]


def test_hashtags_and_caption_words_normalise_like_the_vocabulary():
    table = TokenTable(vocab(), max_tokens=4)
    for prompt in ("#Beach", "#BEACHES!", "beach", "#be_ach🏖", "Beaches"):
        assert table.encode_prompt(prompt).ids == (OFFSET + 0,), prompt
    assert table.encode_prompt("#puppy #dog #beach").ids == (OFFSET + 1, OFFSET + 0)   # merged spellings, deduplicated


def test_unknown_items_are_warned_about_by_name(caplog):
    table = TokenTable(vocab(), max_tokens=4)
    with caplog.at_level(logging.WARNING, logger="tagsight.generate.conditioning"):
        encoded = table.encode_prompt("#dog #sunset on")
    assert encoded.used == ("#dog",) and encoded.unknown == ("#sunset", "on")
    assert "#sunset, on" in caplog.text


def test_a_prompt_with_no_known_item_is_an_error_naming_the_vocabulary():
    with pytest.raises(ReasonError, match="no item of the prompt '#sunset #xyz'") as err:
        TokenTable(vocab(), max_tokens=4).encode_prompt("#sunset #xyz")
    assert err.value.reason == "no_known_token" and "#beach" in str(err.value)


def test_sample_tokens_are_hashtags_then_caption_words_padded_with_null_for_none():
    table = TokenTable(vocab(), max_tokens=3)
    ids = table.sample_ids(["#Dog", "#selfie"], ["a puppy on the beach"])
    assert ids == [OFFSET + 1, OFFSET + 0]
    assert table.row(ids).tolist() == [OFFSET + 1, OFFSET + 0, PAD]
    assert table.row(table.sample_ids(["#selfie"])).tolist() == [NULL, PAD, PAD]
    assert len(table) == 2 + OFFSET
