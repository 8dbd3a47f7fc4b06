"""``tagsight forget`` and generators: pretrain and tuned runs are a 'generator' kind needing retraining, samples are derived."""

import json
import shutil

from tagsight.data.derive import Drop, Keep, derive_dataset
from tagsight.data.index import SampleIndex
from tagsight.generate.runs import load_generator
from tagsight.generate.sample import SampleSettings, write_samples
from tagsight.generate.tune import TuneConfig, tune
import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.privacy.forget import forget, requests_from
from tagsight.privacy.forget_derived import NOTICE_FILE
from tagsight.train.distributed import DistEnv
from tagsight.train.pretrain import pretrain

from tests.generate.tiny import tiny_config


def test_forgetting_an_author_flags_the_base_run_the_tuned_run_and_their_samples(gen_data, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(gen_data[0], root / "ds")
    author = sorted(a for a in SampleIndex.build(root / "ds").author_ids if a)[0]
    pretrain(root / "ds", gen_data[1], root / "runs" / "gen", tiny_config(loop={"epochs": 1}), DistEnv())
    # The curated set leaves the author out: the tuned run still learnt from them through its base run.
    derive_dataset(root / "ds", root / "curated", lambda i, m: Drop("test") if m["author_id"] == author else Keep(),
                   "curate_test")
    cfg = TuneConfig.from_dict({"data": {"batch_size": 8, "epoch_length": 16, "workers": 0, "holdout_fraction": 0.25},
                                "max_steps": 2, "eval_every": 2, "eval_repeats": 1})
    tune(root / "runs" / "gen", root / "curated", root / "runs" / "tuned", cfg, DistEnv())
    gen = load_generator(root / "runs" / "tuned")
    tag = "#" + sorted(gen.table.vocab.lookup)[0]
    write_samples(gen, [tag], 1, root / "samples", settings=SampleSettings(steps=2))

    report = forget(requests_from(authors=[author]), root)
    by_kind = {}
    for r in report.results:
        by_kind.setdefault(r.kind, {})[r.path] = r
    generators = by_kind["generator"]
    assert set(generators) == {str(root / "runs" / "gen"), str(root / "runs" / "tuned")}
    assert all(r.affected > 0 and r.action.startswith("retrain needed") for r in generators.values())
    assert "run" not in by_kind or not set(by_kind["run"]) & set(generators)       # reported once, as generators
    assert set(report.retrain) == set(generators)
    assert by_kind["derived"][str(root / "samples")].affected > 0
    notice = json.loads((root / "runs" / "tuned" / NOTICE_FILE).read_text())
    assert notice["action_needed"] == "retrain" and notice["forgotten_posts_in_lineage"] > 0
    assert any(c.endswith("best") for c in notice["checkpoints"])
    assert author not in (root / "runs" / "tuned" / NOTICE_FILE).read_text()
    again = forget(requests_from(authors=[author]), root)
    assert not again.changed and again.tombstones_added == 0
