"""build_vocab: merges, drops with reasons, top-K/min-count, targets, sampling, versioning, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import DROP_REASONS, Vocabulary, build_vocab


def corpus() -> list[tuple[str, list[str]]]:
    """A few dozen posts whose tags exercise every outcome (post counts in comments)."""
    posts: list[list[str]] = []
    posts += [["#BrownBear", "#love"]] * 6                        # brown_bear 6 (+ ursusarctos below)
    posts += [["#ursusarctos", "#BROWNBEAR🐻"]] * 2 + [["ursusarctos"]] * 2   # brown_bear total 10
    posts += [["#dog", "#dogsofinstagram", "#throwbackthursday"]] * 4 + [["#dogs"]] * 3   # dog 7
    posts += [["#beach", "#paris"]] * 4                            # beach 4
    posts += [["#cake", "#einstein"]] * 2                          # cake 2 < min_count
    posts += [["#❤️", "#zqxjvbk", "#asian"], ["#instagood"], []]
    return [(f"src/{i}", tags) for i, tags in enumerate(posts)]


CFG = VocabConfig(top_k=2, min_count=3)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return build_vocab(corpus(), CFG)


def test_synonyms_merge_into_one_label(vocab: Vocabulary) -> None:
    bear = vocab.labels[0]
    assert bear.label == "brown_bear.n.01" and bear.wnid == "n02132136" and bear.lexname == "noun.animal"
    assert bear.members == {"brownbear": 8, "ursusarctos": 4}
    assert bear.posts == 10
    assert vocab.labels[1].label == "dog.n.01" and set(vocab.labels[1].members) == {"dog", "dogsofinstagram", "dogs"}


def test_top_k_and_min_count(vocab: Vocabulary) -> None:
    assert [l.label for l in vocab.labels] == ["brown_bear.n.01", "dog.n.01"]
    reasons = {d.tag: d.reason for d in vocab.drops}
    assert reasons["beach"] == "beyond_top_k"
    assert reasons["cake"] == "below_min_count"
    unlimited = build_vocab(corpus(), VocabConfig(top_k=None, min_count=1))
    assert [l.label for l in unlimited.labels][:3] == ["brown_bear.n.01", "dog.n.01", "beach.n.01"]
    assert "cake.n.03" in [l.label for l in unlimited.labels]


def test_every_drop_reason_is_produced_and_counted(vocab: Vocabulary) -> None:
    by_tag = {d.tag: d for d in vocab.drops}
    assert by_tag["love"].reason == "stop_list" and by_tag["love"].posts == 6
    assert by_tag["❤"].reason == "empty_after_normalise"
    assert by_tag["zqxjvbk"].reason == "no_wordnet_noun"
    assert by_tag["throwbackthursday"].reason == "non_visual_lexname:noun.time"
    assert by_tag["throwbackthursday"].synset == "thursday.n.01"
    assert by_tag["einstein"].reason == "person_name"
    assert by_tag["paris"].reason == "place_name"
    assert by_tag["asian"].reason == "sensitive_category"
    produced = {d.reason.split(":")[0] for d in vocab.drops}
    assert produced == set(DROP_REASONS)
    assert vocab.drop_summary()["stop_list"] == {"tags": 2, "posts": 7}


def test_coverage_and_lookup(vocab: Vocabulary) -> None:
    c = vocab.coverage
    assert c["posts"] == len(corpus()) == 26
    assert c["posts_with_label"] == 17 and c["coverage"] == pytest.approx(17 / 26)
    assert vocab.lookup == {"brownbear": 0, "dog": 1, "dogs": 1, "dogsofinstagram": 1, "ursusarctos": 0}


def test_labels_for_normalises_and_deduplicates(vocab: Vocabulary) -> None:
    assert vocab.labels_for(["#DOG🐶", "#BrownBear", "dogs", "#love", "#ursus_arctos"]) == [1, 0]
    assert vocab.labels_for(["#love"]) == []


def test_targets_are_one_over_k(vocab: Vocabulary) -> None:
    np.testing.assert_allclose(vocab.targets([1, 0, 1]), [0.5, 0.5])
    np.testing.assert_allclose(vocab.targets([1]), [0.0, 1.0])
    assert vocab.targets([]).sum() == 0
    assert vocab.targets([0, 1]).dtype == np.float32


def test_sample_weights_use_label_frequencies(vocab: Vocabulary) -> None:
    w = vocab.sample_weights([[0], [1], [0, 1], []])
    np.testing.assert_allclose(w, [10 ** -0.5, 7 ** -0.5, (10 ** -0.5 + 7 ** -0.5) / 2, 0.0])
    np.testing.assert_allclose(vocab.sample_weights([[0], [1]], "none"), [1.0, 1.0])
    assert vocab.labels[0].sampling_weight == pytest.approx(10 ** -0.5)


def test_effective_distribution_from_the_build_input(vocab: Vocabulary) -> None:
    none = vocab.effective_distribution("none")
    np.testing.assert_allclose(none, [10 / 17, 7 / 17])
    inverse = vocab.effective_distribution("inverse")
    assert inverse[0] == pytest.approx(inverse[1])


def test_ambiguous_tags_are_recorded(vocab: Vocabulary) -> None:
    rows = {r["tag"]: r for r in vocab.ambiguous}
    assert rows["dog"]["chosen"] == "dog.n.01" and rows["dog"]["rule"] == "first_sense"
    assert "frump.n.01" in rows["dog"]["senses"] and rows["dog"]["kept"]
    assert "brownbear" not in rows


def test_version_is_deterministic_and_content_sensitive(vocab: Vocabulary) -> None:
    assert build_vocab(corpus(), CFG).version == vocab.version
    assert build_vocab(corpus(), VocabConfig(top_k=3, min_count=3)).version != vocab.version
    assert build_vocab(corpus()[:-1], CFG).version != vocab.version
    assert build_vocab(corpus(), CFG, source={"kind": "dataset", "manifest_version": "x"}).version != vocab.version


def test_input_identity(vocab: Vocabulary) -> None:
    assert vocab.input["posts"] == 26 and len(vocab.input["sha256"]) == 64
    built = build_vocab(corpus(), CFG, source={"kind": "dataset", "manifest_version": "abc"})
    assert built.input["manifest_version"] == "abc"


def test_save_and_load_round_trip(vocab: Vocabulary, tmp_path: Path) -> None:
    path = vocab.save(tmp_path / "v")
    assert path == tmp_path / "v" / "vocab.json"
    data = json.loads(path.read_text())
    assert data["version"] == vocab.version and data["config"]["top_k"] == 2
    assert data["labels"][0]["members"] == {"brownbear": 8, "ursusarctos": 4}
    loaded = Vocabulary.load(tmp_path / "v")
    assert loaded == vocab
    assert loaded.labels_for(["#dog"]) == [1]
    with pytest.raises(ValueError, match="label_lists"):
        loaded.effective_distribution("sqrt")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="tagsight vocab build"):
        Vocabulary.load(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="unsupported vocabulary format"):
        Vocabulary.load(tmp_path)


def test_rollup_merges_labels() -> None:
    posts = [("p1", ["#brownbear"]), ("p2", ["#cat"]), ("p3", ["#cat", "#brownbear"]), ("p4", ["#dog"])]
    vocab = build_vocab(posts, VocabConfig(min_count=1, rollup_depth=11))
    labels = {l.label: l for l in vocab.labels}
    assert labels["carnivore.n.01"].members == {"brownbear": 2, "cat": 2}
    assert labels["carnivore.n.01"].posts == 3
    assert labels["dog.n.01"].posts == 1


def test_empty_input() -> None:
    vocab = build_vocab([], VocabConfig())
    assert len(vocab) == 0 and vocab.coverage["coverage"] == 0.0 and vocab.drops == []
