"""On social-imagenette, the vocabulary holds the 10 true concepts and drops the non-visual tags."""

import json

import pytest

from tagsight.datasets.social_imagenette import SocialImagenetteConfig, build_social_imagenette
from tagsight.schema.catalog import iter_kept_hashtags, manifest_version
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.privacy.policy import ConsentPolicy
from tagsight.tags.vocab import build_vocab

CLASSES = ["tench.n.01", "english_springer.n.01", "cassette_player.n.01", "chain_saw.n.01", "church.n.02",
           "french_horn.n.01", "garbage_truck.n.01", "gas_pump.n.01", "golf_ball.n.01", "parachute.n.01"]


@pytest.mark.slow
def test_true_concepts_are_labels_and_nonvisual_noise_is_dropped(shared_data, tmp_path):
    build_social_imagenette(SocialImagenetteConfig(out_dir=tmp_path / "si", data_root=shared_data,
                                                   splits=("train",), limit=3000))
    split = tmp_path / "si" / "train"
    ingest(open_source(split / "posts.jsonl", "jsonl"), tmp_path / "ds",
           ConsentPolicy(optout_files=(str(split / "optout.txt"),)),
           IngestConfig(workers=2, image=ImageConfig(max_side=64)))
    vocab = build_vocab(iter_kept_hashtags(tmp_path / "ds"), source={"manifest_version": manifest_version(tmp_path / "ds")})
    labels = [label.label for label in vocab.labels]
    assert set(CLASSES) <= set(labels)
    assert labels[:10] != [] and sum(label in CLASSES for label in labels[:12]) >= 9  # the classes lead
    kept = {t for label in vocab.labels for t in label.members}
    for tag in ("love", "instagood", "tbt", "happy", "photooftheday", "follow", "bored"):
        assert tag not in kept
    truth = [json.loads(line) for line in (split / "truth.jsonl").read_text().splitlines()]
    noise = {t["tag"] for post in truth for t in post["tags"] if t["kind"] == "nonvisual_noise"}
    assert noise and len(noise & kept) < 0.5 * len(noise)
