"""bench/transfer: arms as data, the shared budget, inputs built once, resume by skipping, the table and the doc."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from transfer import jobs, results, run, spec  # noqa: E402
from transfer.spec import SpecError  # noqa: E402


def tiny_experiment(**changes) -> dict:
    data = {
        "name": "tiny", "title": "Transfer: tiny", "preset": "configs/pretrain_cpu_small.yaml",
        "classes": "{src}/noise_model.json",
        "eval": {"train": "{data}/train", "val": "{data}/val", "img_size": 32},
        "inputs": {
            "src": {"path": "{work}/src", "done": "{src}/noise_model.json", "run": [["make-src", "{src}"]]},
            "ds": {"path": "{work}/ds", "done": "{ds}/manifest.json", "run": [["{tagsight}", "ingest", "{src}", "--out", "{ds}"]]},
            "vocab": {"path": "{work}/vocab", "done": "{vocab}/vocab.json", "run": [["make-vocab", "{ds}", "{vocab}"]]},
        },
        "arms": [
            {"name": "random", "kind": "random", "title": "(a) random"},
            {"name": "tags", "kind": "pretrain", "dataset": "ds", "vocab": "vocab"},
            {"name": "tags-bce", "kind": "pretrain", "dataset": "ds", "vocab": "vocab", "set": ["objective.loss=bce"]},
            {"name": "ref", "kind": "reference", "backbone": "efficientnet-lite0", "seeded": False},
            {"name": "later", "kind": "pretrain", "objective": "swav", "planned": True},
        ],
    }
    data.update(changes)
    return data


class FakeRunner:
    """Stands in for the subprocesses: writes what each tagsight command would, records the calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, command, logfile, tag, env=None) -> float:
        self.calls.append(list(command))
        if command[0] == "make-src":
            Path(command[1]).mkdir(parents=True)
            classes = [{"synset": "tench.n.01"}, {"synset": "church.n.02"}]
            (Path(command[1]) / "noise_model.json").write_text(json.dumps({"classes": classes}))
        elif command[0] == "make-vocab":
            Path(command[2]).mkdir(parents=True)
            (Path(command[2]) / "vocab.json").write_text("{}")
        elif "ingest" in command:
            out = Path(command[command.index("--out") + 1])
            out.mkdir(parents=True)
            counts = {"posts_in": 10, "posts_kept": 7, "posts_rejected": 3,
                      "post_reasons": {"visibility_private": 2, "consent_refused": 1}}
            (out / "manifest.json").write_text(json.dumps({"version": "v1", "counts": counts}))
        elif "pretrain" in command:
            out = Path(command[command.index("--out") + 1])
            (out / "checkpoints").mkdir(parents=True, exist_ok=True)
            trained = {"mAP": 0.1, "p@1": 0.3, "per_label_ap": {"tench.n.01": 0.4, "church.n.02": 0.2, "girl.n.01": 0.0}}
            (out / "eval.json").write_text(json.dumps({"trained": trained}))
        elif "eval" in command:
            seed = int(command[command.index("--seed") + 1])
            top1 = 0.5 + 0.1 * seed + (0.05 if "knn" in command else 0.0)
            out = Path(command[command.index("--out") + 1])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"metrics": {"top1": top1, "top5": 0.9}, "seconds": 2.0}))
        else:
            raise AssertionError(f"unexpected command {command}")
        return 3.0

    def count(self, word: str) -> int:
        return sum(1 for c in self.calls if word in c)


def context(tmp_path: Path, exp: spec.Experiment, runner: FakeRunner, given=None) -> jobs.Context:
    builtins = {"work": str(tmp_path / "work"), "data": str(tmp_path / "data"), "repo": str(REPO), "python": "py"}
    inputs = jobs.Inputs.create(exp, builtins, given or {}, runner=runner)
    return jobs.Context(exp, tmp_path / "work", REPO, inputs, runner=runner)


# ------------------------------------------------------------------ parsing


def test_arms_are_parsed_from_data_and_planned_arms_wait():
    exp = spec.parse_experiment(tiny_experiment())
    assert [a.name for a in exp.select(None)] == ["random", "tags", "tags-bce", "ref"]
    assert [a.name for a in exp.select(["later", "random"])] == ["random", "later"]
    assert exp.arm("tags-bce").set == ("objective.loss=bce",)
    assert exp.arm("ref").seeds([0, 1, 2]) == [0] and exp.arm("tags").seeds([0, 1]) == [0, 1]
    assert exp.inputs["vocab"].needs() == ["ds"] and exp.inputs["src"].needs() == []
    with pytest.raises(SpecError) as err:
        exp.select(["nope"])
    assert err.value.reason == "unknown_arm"


@pytest.mark.parametrize("arm, reason", [
    ({"name": "x", "kind": "magic"}, "bad_arm"),
    ({"name": "x", "kind": "pretrain", "dataset": "ds"}, "bad_arm"),          # no vocab
    ({"name": "x", "kind": "reference"}, "bad_arm"),                          # no backbone
    ({"name": "x", "kind": "random", "dataset": "ds"}, "bad_arm"),
    ({"name": "x", "kind": "pretrain", "dataset": "ds", "vocab": "vocab", "set": ["loss"]}, "bad_arm"),
    ({"name": "x", "kind": "pretrain", "dataset": "elsewhere", "vocab": "vocab"}, "unknown_input"),
    ({"name": "x y", "kind": "random"}, "bad_arm"),
    ({"name": "x", "kind": "random", "colour": "red"}, "bad_spec"),
    ({"name": "random", "kind": "random"}, "duplicate_arm"),
])
def test_bad_arms_are_refused_with_a_reason(arm, reason):
    data = tiny_experiment()
    data["arms"] = [*data["arms"], arm]
    with pytest.raises(SpecError) as err:
        spec.parse_experiment(data)
    assert err.value.reason == reason


def test_every_pretrain_arm_must_share_the_budget():
    exp = spec.parse_experiment(tiny_experiment())
    shared = spec.check_budgets(exp, exp.select(None), REPO)
    assert shared["samples_seen"] == 24576 and shared["model.name"] == "resnet18" and shared["model.img_size"] == 64
    data = tiny_experiment()
    data["arms"].append({"name": "longer", "kind": "pretrain", "dataset": "ds", "vocab": "vocab",
                         "set": ["loop.epochs=12"]})
    exp = spec.parse_experiment(data)
    with pytest.raises(SpecError) as err:
        spec.check_budgets(exp, exp.select(None), REPO)
    assert err.value.reason == "budget_mismatch" and "samples_seen" in str(err.value)
    shared = spec.parse_experiment(tiny_experiment(set=["loop.max_steps=10"]))
    assert spec.check_budgets(shared, shared.select(None), REPO)["samples_seen"] == 640


def test_the_committed_experiment_file_parses_and_shares_one_budget():
    exp = spec.load_experiment(REPO / "configs" / "experiments" / "transfer_cpu.yaml")
    names = [a.name for a in exp.select(None)]
    assert names == ["random", "hashtag", "hashtag-bce", "hashtag-uniform", "ground-truth", "imagenet-lite0"]
    assert {a.name for a in exp.arms if a.planned} == {"swav", "hashtag-relevant"}
    assert spec.check_budgets(exp, exp.select(None), REPO)["samples_seen"] == 24576
    assert exp.arm("hashtag-uniform").set == ("data.sampling=none",)
    assert exp.arm("ground-truth").dataset == "gt_train"


# ------------------------------------------------------------------ inputs and jobs


def test_inputs_are_built_once_in_dependency_order_and_given_ones_never(tmp_path):
    exp = spec.parse_experiment(tiny_experiment())
    runner = FakeRunner()
    ctx = context(tmp_path, exp, runner)
    assert ctx.inputs.path("vocab") == tmp_path / "work" / "vocab"
    assert [c[0] for c in runner.calls[:1]] == ["make-src"] and runner.count("ingest") == 1
    assert runner.calls[-1][0] == "make-vocab"
    ctx.inputs.path("vocab")
    assert len(runner.calls) == 3                                   # done: not rebuilt
    given = tmp_path / "mine"
    (given / "manifest.json").parent.mkdir()
    (given / "manifest.json").write_text("{}")
    runner2 = FakeRunner()
    ctx2 = context(tmp_path / "b", exp, runner2, {"ds": str(given)})
    assert ctx2.inputs.path("ds") == given and runner2.calls == []
    with pytest.raises(SpecError) as err:
        context(tmp_path / "c", exp, FakeRunner(), {"ds": str(tmp_path / "missing")}).inputs.path("ds")
    assert err.value.reason == "input_missing"
    with pytest.raises(SpecError) as err:
        context(tmp_path / "d", exp, FakeRunner(), {"nothing": "x"})
    assert err.value.reason == "unknown_input"


def test_an_input_cycle_is_reported(tmp_path):
    data = tiny_experiment()
    data["inputs"]["src"]["run"] = [["make-src", "{vocab}"]]
    exp = spec.parse_experiment(data)
    with pytest.raises(SpecError) as err:
        context(tmp_path, exp, FakeRunner()).inputs.path("vocab")
    assert err.value.reason == "input_cycle"


def test_jobs_run_seed_by_seed_and_a_rerun_skips_what_is_done(tmp_path):
    exp = spec.parse_experiment(tiny_experiment())
    plan = jobs.plan_jobs(exp.select(None), [0, 1])
    assert [j.key for j in plan] == ["random-s0", "tags-s0", "tags-bce-s0", "ref-s0",
                                     "random-s1", "tags-s1", "tags-bce-s1"]
    runner = FakeRunner()
    done, failures = jobs.run_jobs(context(tmp_path, exp, runner), plan)
    assert failures == [] and len(done) == 7
    assert runner.count("pretrain") == 4 and runner.count("eval") == 14
    pretrain = next(c for c in runner.calls if "pretrain" in c)
    assert pretrain[pretrain.index("--out") + 1].endswith("runs/tags/seed0")
    assert ["--set", "seed=0"] == pretrain[-2:]
    bce = next(c for c in runner.calls if "pretrain" in c and "objective.loss=bce" in c)
    assert bce[bce.index("--objective") + 1] == "hashtag"
    rec = json.loads(jobs.result_path(tmp_path / "work", "tags", 1).read_text())
    assert rec["metrics"] == {"linear_top1": 0.6, "linear_top5": 0.9, "knn_top1": 0.65, "knn_top5": 0.9}
    assert rec["heldout"]["class_mAP"] == pytest.approx(0.3) and rec["heldout"]["labels"] == 3
    assert rec["wall"]["pretrain"] == 3.0 and rec["wall"]["total"] == 9.0 and rec["budget"]["samples_seen"] == 24576

    again = FakeRunner()
    assert jobs.run_jobs(context(tmp_path, exp, again), plan)[0] == [] and again.calls == []

    jobs.result_path(tmp_path / "work", "tags", 1).unlink()          # killed after its evals were written
    third = FakeRunner()
    done, _ = jobs.run_jobs(context(tmp_path, exp, third), plan)
    assert [r["arm"] for r in done] == ["tags"] and third.count("pretrain") == 1 and third.count("eval") == 0


def test_a_failing_job_is_reported_and_the_others_still_run(tmp_path):
    exp = spec.parse_experiment(tiny_experiment())

    class Failing(FakeRunner):
        def __call__(self, command, logfile, tag, env=None):
            if "pretrain" in command and "objective.loss=bce" in command:
                raise SpecError("command_failed", "boom")
            return super().__call__(command, logfile, tag, env)

    done, failures = jobs.run_jobs(context(tmp_path, exp, Failing()), jobs.plan_jobs(exp.select(None), [0]))
    assert [r["arm"] for r in done] == ["random", "tags", "ref"]
    assert [(j.key, e) for j, e in failures] == [("tags-bce-s0", "boom")]
    assert not jobs.result_path(tmp_path / "work", "tags-bce", 0).exists()


def test_eta_uses_measured_means_per_kind():
    assert jobs.eta_seconds([], ["random", "pretrain"]) == jobs.DEFAULT_SECONDS["random"] + jobs.DEFAULT_SECONDS["pretrain"]
    assert jobs.eta_seconds([("pretrain", 100.0), ("pretrain", 300.0)], ["pretrain", "pretrain"]) == 400.0
    assert jobs.fmt_seconds(3725) == "1h02m" and jobs.fmt_seconds(65) == "1m05s"


# ------------------------------------------------------------------ the table and the doc


def test_table_shows_mean_and_spread_single_seeds_and_empty_rows(tmp_path):
    exp = spec.parse_experiment(tiny_experiment())
    jobs.run_jobs(context(tmp_path, exp, FakeRunner()), jobs.plan_jobs(exp.select(["random", "tags", "ref"]), [0, 1]))
    summaries = results.load_results(tmp_path / "work", exp)
    table = results.markdown_table(summaries).splitlines()
    assert table[0].startswith("| arm | linear top-1")
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in table[2:]}
    sd = 100 * math.sqrt(((0.5 - 0.55) ** 2 + (0.6 - 0.55) ** 2) / 1)
    assert rows["tags"][1] == f"55.0 ± {sd:.1f}" and rows["tags"][5] == "0.300 ± 0.000" and rows["tags"][7] == "0, 1 |"
    assert rows["(a) random"][3] == f"60.0 ± {sd:.1f}"
    assert rows["ref"][1] == "50.0" and rows["ref"][7] == "0 (no seed dependence) |"
    assert rows["tags-bce"][1:] == ["—"] * 6 + ["not run yet |"]
    assert rows["later"][7] == "planned (not run yet) |"
    assert results.cell([]) == "—" and results.cell([0.5]) == "50.0"
    seeds = results.seed_table(summaries)
    assert "| tags | 1 | 60.0 | 65.0 | 0.100 (3 labels) |" in seeds
    png = results.plot(summaries, tmp_path / "plot.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_only_rewrites_its_section_of_the_doc_and_keeps_the_rest(tmp_path, capsys):
    exp_path = tmp_path / "exp.yaml"
    exp_path.write_text(yaml.safe_dump(tiny_experiment()))
    exp = spec.load_experiment(exp_path)
    work = tmp_path / "work"
    jobs.run_jobs(context(tmp_path, exp, FakeRunner()), jobs.plan_jobs(exp.select(["tags"]), [0]))
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nIntro.\n\n## Reading\n\nWritten by hand.\n")
    argv = ["--config", str(exp_path), "--work", str(work), "--render-only", "--doc", str(doc),
            "--plot", str(tmp_path / "p.png"), "--seeds", "0"]
    assert run.main(argv) == 0
    text = doc.read_text()
    assert text.startswith("# Results\n\nIntro.") and "## Reading\n\nWritten by hand." in text
    assert "## Transfer: tiny" in text and "| tags | 50.0 |" in text and "![" in text
    assert (tmp_path / "p.png").is_file()
    assert "| ds | v1 | 10 | 7 | 3 | consent_refused 1, visibility_private 2 |" in text   # the fake ingest's manifest
    assert run.main(argv) == 0 and doc.read_text().count("## Transfer: tiny") == 1
    assert "--render-only" not in text.split("```")[1]          # the command to rerun, not the render call
    started = {"id": "x", "status": "running", "command": "python3 run.py --work W", "start": "10:00",
               "jobs_planned": 7, "jobs_skipped": 1}
    (work / "invocations.jsonl").write_text(json.dumps(started) + "\n")
    assert run.main(argv) == 0 and "no end recorded" in doc.read_text()
    finished = {**started, "status": "finished", "end": "10:30", "wall": 1800.0, "jobs_run": 6, "failures": []}
    with open(work / "invocations.jsonl", "a") as f:
        f.write(json.dumps(finished) + "\n")
    assert run.main(argv) == 0
    text = doc.read_text()
    assert "- 10:00 to 10:30: 30.0 min wall, 6 job(s) run, 1 skipped" in text and "no end recorded" not in text
    assert "python3 run.py --work W" in text
    assert run.main(["--config", str(exp_path), "--work", str(work), "--arms", "nope", "--render-only"]) == 2
    assert "unknown_arm" in capsys.readouterr().err
