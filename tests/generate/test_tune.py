"""``tagsight generate tune``: lineage naming the base run and the curated version, early stopping, resume, captions."""

import json

import pytest

from tagsight.curate.reviews import append_reviews
from tagsight.data.derive import Drop, Keep, derive_dataset
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError
from tagsight.generate.conditioning import OFFSET, TokenTable
from tagsight.generate.data import TokenStream, image_transform, reviewer_captions
from tagsight.generate.runs import load_generator
from tagsight.generate.tune import TuneConfig, tune
from tagsight.schema.catalog import manifest_version
from tagsight.lineage import format_chain, read_artifact
from tagsight.data.pipeline import StreamConfig
from tagsight.train.distributed import DistEnv


def small(**kw) -> TuneConfig:
    base = {"data": {"batch_size": 8, "epoch_length": 32, "workers": 0, "holdout_fraction": 0.25},
            "lr": 1e-4, "max_steps": 6, "eval_every": 3, "eval_repeats": 1, "patience": 5, "checkpoint_every": 3,
            "log_every": 1}
    return TuneConfig.from_dict({**base, **kw})


@pytest.fixture(scope="module")
def curated(gen_data, tmp_path_factory):
    """Every other sample of the dataset as a derived version (a stand-in for 'tagsight curate export')."""
    out = tmp_path_factory.mktemp("curated") / "set"
    derive_dataset(gen_data[0], out, lambda i, meta: Keep() if i % 2 == 0 else Drop("test_not_chosen"), "curate_test")
    return out


def test_tune_records_both_parents_keeps_the_best_and_stops_at_the_budget(base_run, curated, tmp_path):
    result = tune(base_run, curated, tmp_path / "tuned", small(), DistEnv())
    assert result["stopped"] == "budget" and result["steps_trained"] == 6 and result["evaluations"] == 3
    state = json.loads((tmp_path / "tuned" / "tune.json").read_text())
    assert [e["step"] for e in state["evaluations"]] == [0, 3, 6]
    best = min(state["evaluations"], key=lambda e: e["loss"])
    assert result["best_loss"] == best["loss"] and result["best_step"] == best["step"]
    info = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert info["kind"] == "tune" and info["dataset"]["manifest_version"] == manifest_version(curated)
    assert info["backbone_run"]["path"] == str(base_run) and info["backbone_run"]["step"] == 24
    artifact = read_artifact(tmp_path / "tuned")
    assert {(p.kind, p.path) for p in artifact.parents} >= {("dataset", str(curated)), ("run", str(base_run))}
    assert str(base_run) in format_chain(artifact)
    gen = load_generator(tmp_path / "tuned")
    assert gen.kind == "tune" and gen.checkpoint.name == "best" and gen.step == result["best_step"]
    assert load_generator(tmp_path / "tuned", "latest").step == 6


def test_rerunning_a_finished_tune_changes_nothing_and_other_parents_are_refused(base_run, curated, gen_data, tmp_path):
    first = tune(base_run, curated, tmp_path / "t", small(max_steps=3), DistEnv())
    metrics = (tmp_path / "t" / "metrics.jsonl").read_text()
    assert tune(base_run, curated, tmp_path / "t", small(max_steps=3), DistEnv()) == first
    assert (tmp_path / "t" / "metrics.jsonl").read_text() == metrics
    more = tune(base_run, curated, tmp_path / "t", small(max_steps=6), DistEnv())     # a larger budget continues
    assert more["steps_trained"] == 6 and more["evaluations"] == 3
    with pytest.raises(ReasonError, match="another base run or curated dataset") as err:
        tune(base_run, gen_data[0], tmp_path / "t", small(max_steps=3), DistEnv())
    assert err.value.reason == "tune_lineage_mismatch"


def test_early_stopping_when_the_held_out_loss_stops_improving(base_run, curated, tmp_path):
    result = tune(base_run, curated, tmp_path / "e", small(lr=0.05, max_steps=30, eval_every=2, patience=2),
                  DistEnv())
    state = json.loads((tmp_path / "e" / "tune.json").read_text())
    assert result["stopped"] == "early_stopping" and result["steps_trained"] < 30
    assert [e["improved"] for e in state["evaluations"][-2:]] == [False, False]
    assert result["best_loss"] == min(e["loss"] for e in state["evaluations"])


def test_reviewer_captions_add_their_words_to_the_tokens(base_run, curated):
    gen = load_generator(base_run)
    table: TokenTable = gen.table
    index = SampleIndex.build(curated)
    word = next(iter(table.vocab.lookup))
    label = table.vocab.lookup[word]
    i = next(i for i, tags in enumerate(index.hashtags) if label not in table.vocab.labels_for(tags))
    ratings = {a: 4 for a in ("composition", "lighting", "colour", "subject", "storytelling")}
    append_reviews(curated, [{"key": index.keys[i], "post_key": index.post_keys[i], "reviewer": "r1",
                              "stage": "specialist", "caption": f"a photo of {word}", **ratings}])
    assert reviewer_captions(curated) == {index.keys[i]: [f"a photo of {word}"]}
    stream = TokenStream(index, table, image_transform(gen.cfg.objective.diffusion, gen.objective.data_config, "train"),
                         StreamConfig(epoch_length=8, batch_size=4, sampling="none", holdout_fraction=0.25))
    assert OFFSET + label in stream.tokens[i].tolist()


def test_the_tune_verb_runs_from_the_command_line(base_run, curated, tmp_path, capsys):
    from tagsight.cli import main

    sets = ["max_steps=1", "eval_every=1", "eval_repeats=1", "data.batch_size=8", "data.epoch_length=16",
            "data.workers=0", "data.holdout_fraction=0.25"]
    args = ["-q", "generate", "tune", str(base_run), str(curated), "--out", str(tmp_path / "cli")]
    assert main([*args, "--json", *[x for s in sets for x in ("--set", s)]]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps_trained"] == 1 and summary["stopped"] == "budget"
    assert main([*args, "--set", "eval_every=0"]) == 2
    assert "eval_every must be >= 1" in capsys.readouterr().err
