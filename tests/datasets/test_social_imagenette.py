"""social-imagenette: posts from (here: tiny fake) Imagenette photos with HARRISON-calibrated hashtag noise."""

from __future__ import annotations

import argparse
import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tagsight.datasets import social_imagenette as si
from tagsight.datasets.harrison_stats import DatasetError, load_harrison, template_usage
from tagsight.schema.posts import VISIBILITIES, Post
from tagsight.schema.text import parse_hashtags
from tagsight.privacy.policy import OptOuts

WNIDS = ("n02102040", "n03028079", "n03445777")   # English springer, church, golf ball
N_TRAIN, N_VAL = 80, 10                            # photos per class
# Fake HARRISON: tags people use that say nothing about these photos, and tags that name a class.
OTHER = ("love", "happy", "friend", "beach", "selfie", "instagood", "sun", "cake", "yellow", "bored", "throwback",
         "family", "summer", "nature", "fun", "cute", "smile", "art", "travel", "food", "photooftheday",
         "instafood", "foodlover", "beachlife", "mylife", "snowball")
RELATED = ("dog", "instadog", "dogsofinstagram", "puppy", "pet", "church", "cathedral", "building", "animal",
           "fish", "golfball", "golfballs", "chainsawart")
FAKE_COUNT_WEIGHTS = (30, 25, 15, 10, 8, 7, 5)     # posts with 1..7 tags


def _wordnet():
    from tagsight.tags.wordnet import WordNetMissing, load_wordnet

    try:
        return load_wordnet()
    except WordNetMissing as exc:
        pytest.skip(f"WordNet is not installed: {exc}")


def _fake_harrison(folder: Path) -> None:
    rng = random.Random(7)
    tags, paths = [], []
    for i in range(600):
        n = rng.choices(range(1, 8), weights=FAKE_COUNT_WEIGHTS)[0]
        post = rng.sample(OTHER + RELATED, n)
        query = "friends" if post[0] == "friend" else post[0]
        tags.append(" ".join(post) + " ")
        paths.append(f"instagram_dataset/{query}/image_{i}.jpg")
    folder.mkdir(parents=True)
    (folder / "tag_list.txt").write_text("\n".join(tags) + "\n")
    (folder / "data_list.txt").write_text("\n".join(paths) + "\n")


def _fake_imagenette(folder: Path) -> None:
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for c, wnid in enumerate(WNIDS):
            (folder / split / wnid).mkdir(parents=True)
            for i in range(n):
                colour = ((40 * c + i) % 256, (7 * i) % 256, (90 * c + 3 * i) % 256)
                Image.new("RGB", (32, 32), colour).save(folder / split / wnid / f"{wnid}_{i}.JPEG", quality=85)
    (folder / "train" / WNIDS[0] / "notes.txt").write_text("not a photo")


@pytest.fixture(scope="module")
def wn():
    return _wordnet()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shared") / "data"
    _fake_imagenette(root / "imagenette-160")
    _fake_harrison(root / "harrison")
    return root


def _build(data_root: Path, out: Path, wn, **kw) -> si.BuildSummary:
    return si.build_social_imagenette(si.SocialImagenetteConfig(out_dir=out, data_root=data_root, **kw), wn=wn)


@pytest.fixture(scope="module")
def built(data_root, wn, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "social"
    return out, _build(data_root, out, wn)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def planned(data_root: Path, wn, n: int, **noise) -> list[si.PlannedPost]:
    """``n`` posts planned (nothing written) over fake photos of the three classes."""
    cfg = si.SocialImagenetteConfig(out_dir=Path("unused"), data_root=data_root, seed=1, noise=si.NoiseModel(**noise))
    ctx, _ = si.build_context(cfg, list(WNIDS), wn)
    photos = [si.Photo(WNIDS[i % 3], Path(f"p{i}.JPEG"), f"media/{WNIDS[i % 3]}/p{i}.JPEG") for i in range(n)]
    return si.plan_split("train", photos, ctx)


# ---------------------------------------------------------------- the written source

def test_every_post_is_a_valid_post_with_its_hashtags_inline(built):
    out, summary = built
    for split, n in (("train", 3 * N_TRAIN), ("val", 3 * N_VAL)):
        lines = read_jsonl(out / split / "posts.jsonl")
        assert len(lines) == n
        for d in lines:
            post = Post.from_dict(d, source=f"si-{split}")
            assert parse_hashtags(post.caption) == list(post.hashtags) == d["hashtags"]
            assert all(" " not in t and "#" not in t for t in post.hashtags)
            assert [m.path for m in post.media] == [d["media"][0]["path"]]
            assert (out / split / post.media[0].path).is_file()
    assert [s.posts for s in summary.splits] == [3 * N_TRAIN, 3 * N_VAL]
    assert summary.splits[0].skipped_files == 1   # notes.txt, reported not silently dropped


def test_truth_is_separate_and_describes_every_hashtag(built):
    out, _ = built
    posts = read_jsonl(out / "train" / "posts.jsonl")
    truth = read_jsonl(out / "train" / "truth.jsonl")
    assert [t["post_id"] for t in truth] == [p["post_id"] for p in posts]
    assert not {"wnid", "tags", "kind", "concept_present"} & set().union(*posts)
    for p, t in zip(posts, truth):
        assert [x["tag"] for x in t["tags"]] == p["hashtags"]
        assert {x["kind"] for x in t["tags"]} <= set(si.TAG_KINDS)
        assert t["media"] == p["media"][0]["path"] and t["wnid"] == t["media"].split("/")[1]
        assert t["concept_present"] == any(x["kind"] == "true_concept" for x in t["tags"])
        assert all(x.get("wnid") == t["wnid"] for x in t["tags"] if x["kind"] == "true_concept")
        wrong = [x for x in t["tags"] if x["kind"] == "wrong_concept"]
        assert (t["wrong_wnid"] is None) == (not wrong)
        assert all(x["wnid"] == t["wrong_wnid"] != t["wnid"] for x in wrong)


def test_present_and_wrong_rates_follow_the_settings(data_root, wn):
    posts = planned(data_root, wn, 2000, p_present=0.5, p_wrong=0.4)
    present = sum(any(t.kind == "true_concept" for t in p.tags) for p in posts) / len(posts)
    wrong = sum(p.wrong is not None for p in posts) / len(posts)
    assert abs(present - 0.5) < 0.04 and abs(wrong - 0.4) < 0.04
    default = planned(data_root, wn, 600)
    assert abs(sum(any(t.kind == "true_concept" for t in p.tags) for p in default) / 600 - 0.8) < 0.05
    assert abs(sum(p.wrong is not None for p in default) / 600 - 0.25) < 0.05


def test_tags_per_post_follow_harrison(data_root, wn):
    stats = load_harrison(data_root / "harrison")
    posts = planned(data_root, wn, 2000)
    drawn = Counter(p.n_drawn for p in posts)
    tv = 0.5 * sum(abs(drawn[k] / 2000 - stats.tags_per_post.get(k, 0) / stats.n_posts) for k in range(1, 11))
    assert tv < 0.05
    written = [sum(t.kind != "optout" for t in p.tags) for p in posts]
    assert abs(sum(written) / len(written) - stats.mean_tags_per_post) < 0.15
    assert all(w >= d for w, d in zip(written, (p.n_drawn for p in posts)))   # only grows when both concepts
    assert sum(w > d for w, d in zip(written, (p.n_drawn for p in posts))) < 0.1 * len(posts)


def test_noise_tags_come_from_harrison_and_never_name_a_class(built):
    out, _ = built
    model = json.loads((out / "noise_model.json").read_text())
    assert set(model["harrison"]["excluded_tags"]) == set(RELATED)
    noise = Counter(x["tag"] for t in read_jsonl(out / "train" / "truth.jsonl") for x in t["tags"]
                    if x["kind"] == "nonvisual_noise")
    assert set(noise) <= set(OTHER) and len(noise) > 15
    assert model["harrison"]["statistics"]["n_posts"] == 600


def test_true_concepts_are_written_in_every_form(data_root, wn):
    tags = [t for p in planned(data_root, wn, 1500) for t in p.tags if t.kind == "true_concept"]
    assert {t.form for t in tags} == set(si.FORMS)
    springer_hypernyms = {t.tag.casefold() for t in tags if t.form == "hypernym" and t.wnid == "n02102040"}
    assert springer_hypernyms <= {"dog", "spaniel", "springer", "gundog", "gun_dog"} and "dog" in springer_hypernyms
    assert {"golfballs", "churches"} <= {t.tag.casefold() for t in tags if t.form == "lemma_variant"}
    compounds = [t for t in tags if t.form == "compound"]
    assert {t.template for t in compounds} == {t.name for t in si.COMPOUND_TEMPLATES}
    assert all("".join(si.lemma_words(t.source)) in t.tag.casefold() or t.template == "{}sofinstagram"
               for t in compounds)
    assert any(t.tag.casefold() in ("dogsofinstagram", "instadog", "dogstagram") for t in compounds)
    for t in tags:
        if t.form == "misspelling":
            assert t.tag != t.typo_of and _one_edit(t.tag, t.typo_of)


def _one_edit(a: str, b: str) -> bool:
    """Levenshtein distance 1, or one transposition of adjacent letters."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                  and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return len(long_) - len(short) == 1 and any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def test_build_is_deterministic_and_limit_gives_a_prefix(built, data_root, wn, tmp_path):
    out, _ = built
    _build(data_root, tmp_path / "again", wn)
    for name in ("train/posts.jsonl", "train/truth.jsonl", "val/optout.txt", "noise_model.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    _build(data_root, tmp_path / "other", wn, seed=5, splits=("val",))
    assert (tmp_path / "other" / "val" / "posts.jsonl").read_bytes() != (out / "val" / "posts.jsonl").read_bytes()
    _build(data_root, tmp_path / "small", wn, limit=12)
    small = (tmp_path / "small" / "train" / "posts.jsonl").read_text().splitlines()
    assert small == (out / "train" / "posts.jsonl").read_text().splitlines()[:12]


def test_photos_are_hard_links_or_copies_inside_the_source(built, data_root):
    out, summary = built
    for p in read_jsonl(out / "val" / "posts.jsonl"):
        placed = out / "val" / p["media"][0]["path"]
        original = data_root / "imagenette-160" / "val" / Path(p["media"][0]["path"]).relative_to("media")
        assert not placed.is_symlink() and placed.resolve().is_relative_to((out / "val").resolve())
        assert placed.read_bytes() == original.read_bytes()
    assert summary.splits[1].photos_linked + summary.splits[1].photos_copied == 3 * N_VAL


def test_photo_is_copied_when_hard_links_fail(tmp_path, monkeypatch):
    src = tmp_path / "a.JPEG"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(src)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.JPEG").symlink_to(src)           # a symlink left there is replaced
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(18, "cross-device link")))
    assert si.link_photo(src, tmp_path / "out" / "b.JPEG") == "copied"
    assert not (tmp_path / "out" / "b.JPEG").is_symlink()
    assert (tmp_path / "out" / "b.JPEG").read_bytes() == src.read_bytes()


def test_rebuild_with_a_limit_removes_stale_photos(data_root, wn, tmp_path):
    _build(data_root, tmp_path / "s", wn, splits=("val",))
    summary = _build(data_root, tmp_path / "s", wn, splits=("val",), limit=4)
    assert len([p for p in (tmp_path / "s" / "val" / "media").rglob("*") if p.is_file()]) == 4
    assert summary.splits[0].stale_media_removed == 3 * N_VAL - 4 and summary.splits[0].photos_kept == 4


def test_audience_mix_and_optout_list(built):
    out, summary = built
    posts = read_jsonl(out / "train" / "posts.jsonl")
    assert {p["visibility"] for p in posts} <= set(VISIBILITIES) and len({p["visibility"] for p in posts}) >= 3
    assert {p["consent"]["ai_training"] for p in posts} == {None, True, False}
    opted = OptOuts.from_file(out / "train" / "optout.txt").authors
    assert opted and opted <= {p["author_id"] for p in posts}
    assert summary.splits[0].opted_out_authors == len(opted)


def test_authors_post_zipf_like_counts():
    seq = si.author_sequence(20_000, random.Random(0), "train", si.NoiseModel())
    per_author = Counter(Counter(seq).values())           # posts -> number of authors posting that many
    assert per_author[1] > per_author[2] > per_author[3] > per_author[5]
    assert 2.5 < per_author[1] / per_author[2] < 6      # about 2 ** alpha with alpha = 2
    assert max(Counter(seq).values()) > 20


# ---------------------------------------------------------------- HARRISON statistics

def test_harrison_statistics(data_root):
    stats = load_harrison(data_root / "harrison", lambda q: {q, "friend"} if q == "friends" else {q})
    assert stats.n_posts == 600 and sum(stats.tags_per_post.values()) == 600
    assert set(stats.tags_per_post) <= set(range(1, 8))
    assert stats.query_presence == 1.0                    # 'friends' query found as 'friend'
    for tag, count in stats.cotag_counts.items():
        assert count == stats.tag_counts[tag] - stats.query_counts.get(tag, 0) - (
            stats.query_counts.get("friends", 0) if tag == "friend" else 0)
    usage = template_usage(stats.tag_counts, lambda w: w in {"dog", "photo", "food", "beach", "life"})
    assert usage["insta{}"] == ["instadog", "instafood"] and usage["{}sofinstagram"] == ["dogsofinstagram"]
    assert usage["{}life"] == ["beachlife"]


def test_harrison_errors_have_reason_codes(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_harrison(tmp_path)
    assert e.value.reason == "harrison_missing"
    (tmp_path / "tag_list.txt").write_text("love\nsea beach\n")
    (tmp_path / "data_list.txt").write_text("instagram_dataset/sea/image_1.jpg\n")
    with pytest.raises(DatasetError) as e:
        load_harrison(tmp_path)
    assert e.value.reason == "harrison_mismatch"


# ---------------------------------------------------------------- words

def test_concepts_and_curated_hypernyms_match_wordnet(wn):
    for wnid in si.HYPERNYM_TAGS:                         # raises if a curated hypernym is not one
        concept = si.load_concept(wnid, wn)
        assert concept.synset.endswith(".n.01") or wnid == "n03028079"
    assert si.load_concept("n03028079", wn).synset == "church.n.02"
    tench = si.load_concept("n01440764", wn)
    assert tench.hypernyms == (("fish.n.01", "fish"),) and tench.binomials == ("Tinca_tinca",)
    assert si.load_concept("n03394916", wn).binomials == ()      # French_horn is not a species name
    assert si.is_binomial("Canis_familiaris", wn) and not si.is_binomial("English_springer", wn)


def test_spellings_plurals_and_typos():
    model = si.NoiseModel(multiword_spelling={"joined": 0, "camel": 1, "snake": 0})
    assert si.spell(["french", "horn"], random.Random(0), model) == ("FrenchHorn", "camel")
    assert si.lemma_words("English_springer") == ["english", "springer"]
    assert [si.pluralize(w) for w in ("church", "ball", "fish", "daisy")] == ["churches", "balls", "fish", "daisies"]
    rng = random.Random(3)
    for _ in range(200):
        t = si.typo("parachute", rng)
        assert t != "parachute" and t[0] == "p" and _one_edit(t, "parachute")


# ---------------------------------------------------------------- bad input and the CLI

def test_data_root_missing_names_both_places(tmp_path):
    with pytest.raises(DatasetError) as e:
        si.resolve_data_root(env={}, cwd=tmp_path / "repo")
    assert e.value.reason == "data_missing"
    assert "TAGSIGHT_DATA" in str(e.value) and str(tmp_path / "repo" / ".." / "shared" / "data") in str(e.value)
    (tmp_path / "d" / "imagenette-160").mkdir(parents=True)
    with pytest.raises(DatasetError) as e:
        si.resolve_data_root(env={"TAGSIGHT_DATA": str(tmp_path / "d")})
    assert e.value.reason == "harrison_missing"


@pytest.mark.parametrize("layout, reason", [
    ({"train/notawnid/a.JPEG": b"x"}, "invalid_wnid"),
    ({"train/n99999999/a.JPEG": b"x"}, "unknown_wnid"),
    ({"train/n02102040/readme.txt": b"x"}, "empty_split"),
    ({"val/n02102040/a.JPEG": b"x"}, "split_missing"),
])
def test_bad_imagenette_trees_give_reason_codes(tmp_path, data_root, wn, layout, reason):
    root = tmp_path / "data"
    (root / "harrison").mkdir(parents=True)
    for name in ("tag_list.txt", "data_list.txt"):
        (root / "harrison" / name).write_bytes((data_root / "harrison" / name).read_bytes())
    for rel, content in layout.items():
        (root / "imagenette-160" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "imagenette-160" / rel).write_bytes(content)
    with pytest.raises(DatasetError) as e:
        _build(root, tmp_path / "out", wn, splits=("train",))
    assert e.value.reason == reason


@pytest.mark.parametrize("kw", [{"p_present": 1.5}, {"p_wrong": -0.1}, {"max_posts_per_author": 0},
                                {"form_weights": {"synonym": 1.0}}])
def test_noise_model_is_validated(kw):
    with pytest.raises(ValueError):
        si.NoiseModel(**kw)


@pytest.mark.parametrize("kw", [{"limit": 0}, {"splits": ()}, {"splits": ("train", "train")}, {"splits": ("../x",)},
                                {"seed": "1"}])
def test_config_is_validated(kw):
    with pytest.raises(ValueError):
        si.SocialImagenetteConfig(out_dir=Path("o"), data_root=Path("d"), **kw)


def _cli(argv: list[str]) -> int:
    from tagsight.cli import datasets

    parser = argparse.ArgumentParser(prog="tagsight")
    datasets.register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_builds_and_reports_bad_data(data_root, tmp_path, capsys):
    assert _cli(["datasets", "social-imagenette", "--out", str(tmp_path / "o"), "--data", str(data_root),
                 "--limit", "5", "--splits", "val", "--p-wrong", "0.5"]) == 0
    assert "val: 5 posts" in capsys.readouterr().out
    assert len(read_jsonl(tmp_path / "o" / "val" / "posts.jsonl")) == 5
    assert json.loads((tmp_path / "o" / "noise_model.json").read_text())["noise_model"]["p_wrong"] == 0.5
    assert _cli(["datasets", "social-imagenette", "--out", str(tmp_path / "o"), "--data", str(tmp_path / "no")]) == 2
    assert "[data_missing]" in capsys.readouterr().err


# ---------------------------------------------------------------- the real data

@pytest.mark.slow
def test_real_build_produces_every_photo(shared_data, tmp_path):
    if not (shared_data / "harrison").is_dir():
        pytest.skip(f"HARRISON not found at {shared_data / 'harrison'} (set TAGSIGHT_DATA)")
    summary = _build(shared_data, tmp_path / "si", _wordnet())
    assert [(s.split, s.posts, s.classes) for s in summary.splits] == [("train", 9469, 10), ("val", 3925, 10)]
    for s in summary.splits:
        lines = read_jsonl(tmp_path / "si" / s.split / "posts.jsonl")
        assert len(lines) == s.posts == len(read_jsonl(tmp_path / "si" / s.split / "truth.jsonl"))
        assert all(Post.from_dict(d).media for d in lines)
        assert abs(s.concept_present / s.posts - 0.8) < 0.02 and abs(s.wrong_concept / s.posts - 0.25) < 0.02
        assert s.photos_linked + s.photos_copied == s.posts
    model = json.loads((tmp_path / "si" / "noise_model.json").read_text())
    assert abs(summary.splits[0].mean_tags_per_post - model["harrison"]["statistics"]["mean_tags_per_post"]) < 0.1
