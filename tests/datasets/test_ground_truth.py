"""The clean-label twin of a social-imagenette split: only the hashtags change, the consent gate sees the same posts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from tagsight.cli import main as cli_main
from tagsight.datasets.ground_truth import (class_hashtag, ground_truth_post, optout_tags, read_jsonl,
                                        write_ground_truth_split)
from tagsight.datasets.harrison_stats import DatasetError

CLASSES = {"n03394916": ("french_horn.n.01", "French horn"), "n03028079": ("church.n.02", "church"),
           "n01440764": ("tench.n.01", "tench")}
# (visibility, consent, hashtags with their truth kinds, author)
POSTS = [
    ("public", None, [("frenchhorn", "true_concept"), ("love", "nonvisual_noise")], "u1"),
    ("public", None, [("beach", "nonvisual_noise")], "u2"),                       # concept absent
    ("public", True, [("tench", "wrong_concept"), ("InstaChurch", "true_concept")], "u3"),
    ("followers", None, [("tench", "true_concept")], "u1"),
    ("public", False, [("church", "true_concept")], "u2"),
    ("public", None, [("tincatinca", "true_concept"), ("noai", "optout")], "u3"),
    ("public", None, [("frenchhorns", "true_concept")], "u4"),                     # u4 opted out
    ("private", None, [("selfie", "nonvisual_noise")], "u5"),
]
WNIDS = ["n03394916", "n01440764", "n03028079", "n01440764", "n03028079", "n01440764", "n03394916", "n03028079"]


def _photo(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((32, 32)).save(path, "JPEG")


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """A small social-imagenette split folder: posts, truth, opt-out list and photos."""
    folder = tmp_path / "si" / "train"
    posts, truths = [], []
    for i, ((vis, consent, tags, author), wnid) in enumerate(zip(POSTS, WNIDS)):
        media = f"media/{wnid}/{wnid}_{i}.JPEG"
        _photo(folder / media, i)
        hashtags = [t for t, _ in tags]
        posts.append({"post_id": f"train-{i:06d}", "author_id": f"train-{author}", "created_at": "2017-05-01T10:00:00Z",
                      "visibility": vis, "caption": "Look. " + " ".join(f"#{t}" for t in hashtags),
                      "hashtags": hashtags, "media": [{"path": media}], "consent": {"ai_training": consent},
                      "region": "DE", "license": None, "likes": i})
        synset, name = CLASSES[wnid]
        truths.append({"post_id": f"train-{i:06d}", "split": "train", "wnid": wnid, "synset": synset,
                       "class_name": name, "media": media, "tags": [{"tag": t, "kind": k} for t, k in tags]})
    (folder / "posts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in posts))
    (folder / "truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truths))
    (folder / "optout.txt").write_text("# opted out\ntrain-u4\n")
    return folder


def test_class_hashtag_is_the_joined_first_lemma():
    assert [class_hashtag(s) for s in ("french_horn.n.01", "church.n.02", "chain_saw.n.01", "english_springer.n.01",
                                       "tench.n.01", "gas_pump.n.01")] == \
        ["frenchhorn", "church", "chainsaw", "englishspringer", "tench", "gaspump"]
    with pytest.raises(DatasetError) as err:
        class_hashtag("not-a-synset")
    assert err.value.reason == "bad_synset"


def test_only_hashtags_and_caption_change(split, tmp_path):
    out = tmp_path / "gt" / "train"
    summary = write_ground_truth_split(split, out)
    before, after = read_jsonl(split / "posts.jsonl"), read_jsonl(out / "posts.jsonl")
    truths = read_jsonl(split / "truth.jsonl")
    assert summary.posts == len(after) == len(POSTS)
    assert summary.classes == {"French horn": 2, "tench": 3, "church": 3}
    assert summary.optout_tag_posts == 1 and summary.photos == {"linked": len(POSTS)}
    for old, new, truth in zip(before, after, truths):
        expected = [class_hashtag(truth["synset"]), *optout_tags(truth)]
        assert new["hashtags"] == expected
        assert new["caption"] == " ".join(f"#{t}" for t in expected)
        assert {k: v for k, v in new.items() if k not in ("hashtags", "caption")} == \
               {k: v for k, v in old.items() if k not in ("hashtags", "caption")}
    assert after[5]["hashtags"] == ["tench", "noai"]        # the opt-out tag survives
    assert after[1]["hashtags"] == ["tench"]                # the concept was absent from the noisy tags
    for post in after:
        src, dst = split / post["media"][0]["path"], out / post["media"][0]["path"]
        assert os.path.samefile(src, dst) and not dst.is_symlink()
    assert (out / "optout.txt").read_text() == (split / "optout.txt").read_text()
    assert (out / "truth.jsonl").read_bytes() == (split / "truth.jsonl").read_bytes()
    first = (out / "posts.jsonl").read_bytes()
    write_ground_truth_split(split, out)
    assert (out / "posts.jsonl").read_bytes() == first


def _decisions(dataset: Path) -> list[tuple]:
    path = dataset / "catalog" / "decisions.parquet"
    return duckdb.sql(f"select post_id, status, reason from '{path}' order by post_id").fetchall()


def test_consent_gate_keeps_and_rejects_the_same_posts(split, tmp_path, capsys):
    out = tmp_path / "gt" / "train"
    assert cli_main(["datasets", "ground-truth", str(split), "--out", str(out)]) == 0
    for name, folder in (("noisy", split), ("clean", out)):
        assert cli_main(["-q", "ingest", str(folder / "posts.jsonl"), "--out", str(tmp_path / name),
                         "--optout", str(folder / "optout.txt")]) == 0
    noisy, clean = _decisions(tmp_path / "noisy"), _decisions(tmp_path / "clean")
    assert noisy == clean
    reasons = {r for _, status, r in noisy if status != "kept"}
    assert {"visibility_followers", "consent_refused", "optout_hashtag", "author_opted_out",
            "visibility_private"} <= reasons
    kept = duckdb.sql(f"select post_id, hashtags from '{tmp_path / 'clean' / 'catalog' / 'posts.parquet'}' "
                      f"order by post_id").fetchall()
    assert [(p, list(h)) for p, h in kept] == [("train-000000", ["frenchhorn"]), ("train-000001", ["tench"]),
                                               ("train-000002", ["church"])]


def test_mismatched_truth_is_refused(split, tmp_path, capsys):
    lines = (split / "truth.jsonl").read_text().splitlines()
    (split / "truth.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError) as err:
        write_ground_truth_split(split, tmp_path / "gt")
    assert err.value.reason == "truth_mismatch" and "1 posts without a truth line" in str(err.value)
    assert cli_main(["datasets", "ground-truth", str(split), "--out", str(tmp_path / "gt")]) == 2
    assert "truth_mismatch" in capsys.readouterr().err
    post = read_jsonl(split / "posts.jsonl")[0]
    truth = json.loads(lines[0])
    with pytest.raises(DatasetError, match="not among the post's media"):
        ground_truth_post(post, {**truth, "media": "media/other.JPEG"})
    with pytest.raises(DatasetError) as err:
        write_ground_truth_split(split, split)
    assert err.value.reason == "same_folder"
    with pytest.raises(DatasetError) as err:
        write_ground_truth_split(tmp_path / "nowhere", tmp_path / "gt2")
    assert err.value.reason == "split_missing"


def test_verified_labels_name_every_post_by_its_ingest_key_and_true_class(split, tmp_path):
    from tagsight.datasets.ground_truth import write_verified_labels

    n = write_verified_labels(split, tmp_path / "verified.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "verified.jsonl").read_text().splitlines()]
    truths = [json.loads(line) for line in (split / "truth.jsonl").read_text().splitlines()]
    assert n == len(rows) == len(truths)
    assert rows == [{"post_key": f"posts/{t['post_id']}", "labels": [t["synset"]]} for t in truths]
