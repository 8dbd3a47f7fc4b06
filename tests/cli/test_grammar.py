"""One grammar for the CLI: --config/--set reach each verb's config, old spellings work and warn, --json parses
and carries the counts people see, every flag has one meaning (docs/cli.md), README and docs commands parse."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest

from tagsight.cli import build_parser, main
from tagsight.cli.options import DEPRECATIONS
from tagsight.fsio import ReasonError

REPO = Path(__file__).resolve().parents[2]

# verb -> the dataclass config its --config / --set build
CONFIG_VERBS = {"ingest": "ConsentPolicy", "vocab build": "VocabConfig", "pretrain": "PretrainConfig",
                "eval finetune": "FinetuneConfig", "curate filter": "CurateConfig", "generate tune": "TuneConfig",
                "relevance score": "ScoreConfig", "heads train": "HeadConfig", "apps calibrate": "CalibrationConfig",
                "apps starter": "CalibrationConfig", "curate export": "ExportConfig"}


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def _visible_flags(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions if a.help != argparse.SUPPRESS for o in a.option_strings if o.startswith("--")}


def test_every_verb_with_a_config_has_both_flags_and_no_other_verb_half_of_them():
    parsers = dict(_parsers(build_parser()))
    for verb in CONFIG_VERBS:
        assert {"--config", "--set"} <= _visible_flags(parsers[verb]), verb
        assert CONFIG_VERBS[verb] in _help_of(parsers[verb], "--config"), verb
    for verb, parser in parsers.items():
        flags = _visible_flags(parser)
        assert ("--config" in flags) == ("--set" in flags), verb
        if "--config" in flags:
            assert verb in CONFIG_VERBS, f"{verb} takes --config: add it to CONFIG_VERBS and docs/cli.md"


def _help_of(parser: argparse.ArgumentParser, flag: str) -> str:
    return next(a.help for a in parser._actions if flag in a.option_strings)


def _documented_flags() -> set[str]:
    text = (REPO / "docs" / "cli.md").read_text()
    table = text.split("## Flags: one meaning each", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `--")]
    flags = [f for row in rows for f in re.findall(r"`(--[a-z0-9-]+)`", row.split("|")[1])]
    assert len(flags) == len(set(flags)), "a flag is listed twice in docs/cli.md: one meaning each"
    return set(flags)


def test_every_flag_of_every_verb_has_one_documented_meaning():
    documented = _documented_flags()
    used = {flag for _, parser in _parsers(build_parser()) for flag in _visible_flags(parser)}
    assert used - documented == set(), "flags missing from docs/cli.md's table"
    assert documented - used == set(), "docs/cli.md lists flags no verb has"


def test_retired_words_are_hidden_where_they_meant_something_else():
    parsers = dict(_parsers(build_parser()))
    for verb, flag in [("ingest", "--policy"), ("relevance filter", "--policy"), ("apps calibrate", "--bundle"),
                       ("apps starter", "--bundle"), ("serve", "--bundle"), ("predict", "--bundle"),
                       ("predict", "--format"), ("heads train", "--data"), ("generate", "--model"),
                       ("curate export", "--top"), ("datasets verified", "--source")]:
        assert flag not in _visible_flags(parsers[verb]), (verb, flag)
    assert not any("--bundle" in _visible_flags(p) or "--policy" in _visible_flags(p) for p in parsers.values())


@pytest.mark.parametrize("old, new, dest, value", [
    (["ingest", "S", "--out", "D", "--policy", "p.yaml"], ["ingest", "S", "--out", "D", "--config", "p.yaml"],
     "config", Path("p.yaml")),
    (["apps", "calibrate", "R", "--bundle", "B"], ["apps", "calibrate", "R", "--out", "B"], "out", Path("B")),
    (["apps", "starter", "--vocab", "v", "--calibrate-on", "c", "--bundle", "B"],
     ["apps", "starter", "--vocab", "v", "--calibrate-on", "c", "--out", "B"], "out", Path("B")),
    (["serve", "--bundle", "B"], ["serve", "B"], "bundle", Path("B")),
    (["heads", "train", "--data", "D", "--task", "moderate", "--backbone", "b", "--out", "o"],
     ["heads", "train", "D", "--task", "moderate", "--backbone", "b", "--out", "o"], "data", Path("D")),
    (["generate", "--model", "R", "--prompt", "x", "--out", "o"], ["generate", "R", "--prompt", "x", "--out", "o"],
     "run", Path("R")),
    (["curate", "export", "ds", "--out", "o", "--top", "3"], ["curate", "export", "ds", "--out", "o", "--keep-top", "3"],
     "top", 3),
    (["relevance", "filter", "s", "--out", "o", "--policy", "labels"],
     ["relevance", "filter", "s", "--out", "o", "--select", "labels"], "select", "labels"),
    (["predict", "p.jpg", "--bundle", "B", "--app", "hashtags", "--format", "csv"],
     ["predict", "B", "p.jpg", "--app", "hashtags", "--out-format", "csv"], "format", "csv"),
    (["datasets", "verified", "d", "--out", "v.jsonl", "--source", "feed"],
     ["datasets", "verified", "d", "--out", "v.jsonl", "--source-name", "feed"], "source", "feed"),
])
def test_old_spellings_parse_like_the_new_ones_and_warn(old, new, dest, value, caplog):
    from tagsight.cli.options import warn_deprecated

    parser = build_parser()
    before, after = parser.parse_args(old), parser.parse_args(new)
    assert getattr(before, dest) == getattr(after, dest) == value
    assert not getattr(after, DEPRECATIONS, None)
    warn_deprecated(before)
    assert "is deprecated and will be removed: use" in caplog.text


def test_predict_takes_the_bundle_first_and_the_old_order_too(monkeypatch, tmp_path, capsys, caplog):
    seen = []

    def fake(photos, bundle, cfg, out):
        seen.append((list(map(str, photos)), str(bundle)))
        return {"images": len(photos), "answered": len(photos), "unreadable": 0}

    monkeypatch.setattr("tagsight.apps.predict.predict_files", fake)
    assert main(["predict", "B", "a.jpg", "b.jpg", "--app", "hashtags"]) == 0
    assert main(["predict", "a.jpg", "b.jpg", "--app", "hashtags", "--bundle", "B"]) == 0
    assert seen == [(["a.jpg", "b.jpg"], "B")] * 2
    assert "--bundle is deprecated" in caplog.text
    assert main(["predict", "B", "--app", "hashtags"]) == 2
    assert "missing_photos" in capsys.readouterr().err


class Captured(ReasonError):
    def __init__(self) -> None:
        super().__init__("captured", "stopped by the test after the config was built")


def _capture(monkeypatch, target: str, position: int | None = None, keyword: str | None = None) -> dict:
    """Replace ``target`` with a function that records its config argument and stops the verb (exit 2)."""
    seen: dict = {}

    def fake(*args, **kwargs):
        seen["cfg"] = kwargs[keyword] if keyword else args[position]
        raise Captured()

    monkeypatch.setattr(target, fake)
    return seen


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _verb_cases(tmp: Path):
    """(argv without --config/--set, library function to capture, where its config is, a good --set, how to read
    it back, a typo and the key the refusal names)."""
    tags = _write(tmp / "tags.txt", "dog beach\n")
    vocab = _write(tmp / "vocab" / "vocab.json", "{}")
    return [
        (["vocab", "build", str(tags), "--out", str(tmp / "v")], "tagsight.tags.vocab.build_vocab", 1,
         "min_count=7", lambda c: c.min_count == 7, "min_cont=7", "min_count"),
        (["pretrain", str(tmp / "ds"), "--vocab", str(vocab), "--out", str(tmp / "r"), "--device", "cpu"],
         "tagsight.train.pretrain.pretrain", 3, "loop.max_steps=3", lambda c: c.loop.max_steps == 3,
         "loop.max_step=3", "loop.max_steps"),
        (["eval", "finetune", "timm:resnet18", "--train", str(tmp), "--val", str(tmp), "--run-dir", str(tmp / "ft"),
          "--device", "cpu"], "tagsight.eval.finetune.finetune", 2, "optim.base_lr=0.05",
         lambda c: c.optim.base_lr == 0.05, "optim.base_l=1", "optim.base_lr"),
        (["curate", "filter", str(tmp / "ds")], "tagsight.curate.chain.run_filters", 1, "keep_top=4",
         lambda c: c.keep_top == 4, "keep_topp=4", "keep_top"),
        (["generate", "tune", str(tmp / "r"), str(tmp / "c"), "--out", str(tmp / "t"), "--device", "cpu"],
         "tagsight.generate.tune.tune", 3, "max_steps=9", lambda c: c.max_steps == 9, "max_step=9", "max_steps"),
        (["heads", "train", str(tmp), "--task", "moderate", "--backbone", "b", "--out", str(tmp / "h")],
         "tagsight.apps.heads.train_head", 4, "batch_size=8", lambda c: c.batch_size == 8 and c.task == "moderate",
         "batchsize=8", "batch_size"),
        (["relevance", "score", str(tmp / "ds"), "--vocab", str(vocab), "--out", str(tmp / "s")],
         "tagsight.relevance.score.score_dataset", 2, "lr=0.01", lambda c: c.lr == 0.01, "lrr=0.01", "lr"),
        (["apps", "calibrate", str(tmp / "r"), "--z", "1"], "tagsight.apps.calibration.calibrate_run", 2,
         "check_fraction=0.25", lambda c: c.check_fraction == 0.25 and c.z == 1.0 and c.open_set_score == "knn",
         "check_fractio=0.2", "check_fraction"),
        (["apps", "starter", "--vocab", str(vocab), "--calibrate-on", str(tmp), "--out", str(tmp / "b")],
         "tagsight.apps.starter.calibrate_starter", 3, "min_support=9",
         lambda c: c.min_support == 9 and c.open_set_score == "max_logit", "min_suport=9", "min_support"),
        (["curate", "export", str(tmp / "ds"), "--out", str(tmp / "x"), "--stage", "specialist"],
         "tagsight.curate.export.export_curated", 2, "min_rating=4.5",
         lambda c: c.min_rating == 4.5 and c.stage == "specialist", "min_ratin=4", "min_rating"),
    ]


def _prepare(monkeypatch) -> None:
    monkeypatch.setattr("tagsight.cli.heads.resolve_backbone", lambda spec: (None, spec))
    monkeypatch.setattr("tagsight.tags.vocab.Vocabulary.load", classmethod(lambda cls, path: None))


@pytest.mark.parametrize("case", range(10))
def test_config_file_and_set_reach_each_verbs_config_and_a_typo_is_refused(case, tmp_path, monkeypatch, capsys):
    argv, target, position, good, check, typo, key = _verb_cases(tmp_path)[case]
    _prepare(monkeypatch)
    seen = _capture(monkeypatch, target, position)
    assert main([*argv, "--set", good]) == 2
    assert "stopped by the test" in capsys.readouterr().err and check(seen.pop("cfg"))
    field, value = good.split("=", 1)
    nested = {}
    node = nested
    *parents, leaf = field.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = json.loads(value) if value[0].isdigit() else value
    config = _write(tmp_path / "c.yaml", json.dumps(nested))
    assert main([*argv, "--config", str(config)]) == 2
    assert check(seen.pop("cfg"))
    assert main([*argv, "--set", typo]) == 2
    err = capsys.readouterr().err
    assert f"did you mean '{key}'" in err and "--set" in err and "cfg" not in seen


def test_ingest_config_is_the_consent_policy(tmp_path, monkeypatch, capsys, caplog):
    from tagsight.ingest.pipeline import DryRunReport

    src = _write(tmp_path / "posts.jsonl", "")
    seen = []
    monkeypatch.setattr("tagsight.ingest.pipeline.dry_run",
                        lambda source, policy, out, fetch: seen.append(policy) or DryRunReport(source={}))
    argv = ["ingest", str(src), "--format", "jsonl", "--out", str(tmp_path / "ds"), "--dry-run"]
    assert main([*argv, "--set", "allowed_visibility=[public, unlisted]", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dry_run"] is True
    assert seen.pop().allowed_visibility == ("public", "unlisted")
    policy = _write(tmp_path / "p.yaml", "blur_faces: true\n")
    assert main([*argv, "--config", str(policy)]) == 0 and seen.pop().blur_faces is True
    assert main([*argv, "--policy", str(policy)]) == 0 and seen.pop().blur_faces is True
    assert "--policy is deprecated and will be removed: use --config FILE" in caplog.text
    capsys.readouterr()
    assert main([*argv, "--set", "allowed_visibilty=[public]"]) == 2
    assert "did you mean 'allowed_visibility'" in capsys.readouterr().err


def test_ingest_json_carries_the_counts_people_see(mixed_source, tmp_path, capsys):
    src, _ = mixed_source
    argv = ["-q", "ingest", str(src), "--workers", "1", "--max-side", "32"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    people = capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["posts_in"] == result["posts_kept"] + result["posts_rejected"]
    assert f"posts: {result['posts_in']} in = {result['posts_kept']} kept + {result['posts_rejected']} rejected" \
        in people
    assert main([*argv, "--out", str(tmp_path / "c"), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["posts_in"] == dry["eligible"] + sum(dry["refused"].values()) == result["posts_in"]


def test_forget_audit_and_lineage_json(mixed_source, tmp_path, capsys):
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    path, _ = mixed_source
    root = tmp_path / "root"
    ingest(open_source(path, "jsonl", name="feed"), root / "ds", cfg=IngestConfig(workers=1))
    none = str(tmp_path / "no-cache")
    assert main(["forget", "--author", "ann", "--root", str(root), "--cache-dir", none, "--rewrite", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tombstones_added"] == 1 and report["forgotten_posts"] >= 1 and report["results"]
    assert main(["forget", "--audit", str(root), "--cache-dir", none, "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["clean"] is True and audit["traces"] == [] and audit["forgotten_posts"] >= 1
    assert main(["lineage", str(root / "ds"), "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["kind"] == "dataset" and Path(chain["path"]).name == "ds"
    assert main(["lineage", "--post", "feed/ok1", "--root", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["post"] == "feed/ok1"


def test_results_for_people_are_never_python_or_json_dumps():
    from tagsight.cli.options import format_fields

    text = format_fields({"out": "x", "counts": {"indexed": 3, "skipped": []}, "heads": ["a", "b"],
                          "rows": [{"k": 1}], "none": None, "rate": 0.123456})
    assert "{" not in text and "[" not in text and "'" not in text
    assert "counts.indexed" in text and "a, b" in text and "0.1235" in text


def _commands(path: Path) -> list[str]:
    """Every ``tagsight ...`` command line of the fenced code blocks of ``path`` (continuations joined)."""
    found, block = [], False
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = not block
        elif block and line.lstrip().startswith("tagsight "):
            text = line.strip()
            while i + 1 < len(lines) and (text.endswith("\\") or _synopsis_continues(lines[i + 1])):
                i += 1
                text = text.rstrip("\\") + " " + lines[i].strip()
            found += [part.strip() for part in text.split("&&") if part.strip().startswith("tagsight ")]
        i += 1
    return found


def _synopsis_continues(line: str) -> bool:
    """An indented line of options under a synopsis line (``    [--keep-empty] --out DIR``)."""
    return line.startswith(" ") and line.strip().startswith(("[", "--"))


def _argv(command: str) -> list[str]:
    """The argv of a documented command: comments, optional [...] groups and a|b alternatives resolved."""
    command = re.sub(r"\[[^\]]*\]", "", command)
    words = shlex.split(command, comments=True)[1:]
    return [w.split("|")[0] if re.fullmatch(r"[a-z0-9-]+(\|[a-z0-9-]+)+", w) else w for w in words]


@pytest.mark.parametrize("doc", ["README.md", *sorted(p.name for p in (REPO / "docs").glob("*.md"))])
def test_every_documented_command_parses_in_the_new_grammar(doc):
    path = REPO / doc if doc == "README.md" else REPO / "docs" / doc
    parser = build_parser()
    for command in _commands(path):
        argv = _argv(command)
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{doc}: {command!r} does not parse")
        assert not getattr(args, DEPRECATIONS, None), f"{doc}: {command!r} uses an old spelling"


def test_apps_calibrate_summary_is_sentences_and_a_table_not_reprs():
    from tagsight.cli.apps import format_summary

    half = {"raw": {"nll": 0.5, "ece": 0.1}, "calibrated": {"nll": 0.4, "ece": 0.05}}
    result = {"heldout": {"posts": 40, "labels": 3, "concepts_measured_on": "verified labels"},
              "calibrator": {"method": "platt", "loss": "bce", "a": [1.0, 2.0], "b": [0.0, 0.1]},
              "metrics": {"fit": half, "check": half},
              "summary": {"alt_text_concepts": 1, "labels": 3, "check_pooled_precision": 0.9, "check_predictions": 10,
                          "check_concepts_meeting_target": 1, "check_concepts_measured": 1, "target_precision": 0.8},
              "concepts": [{"name": "dog.n.01", "alt_text": True, "threshold": 0.5,
                            "fit": {"precision": 0.9, "predicted": 10}, "check": {"precision": 0.8, "predicted": 5}}]}
    text = format_summary(result)
    assert "{" not in text and "[" not in text and "'" not in text
    assert "held-out posts: posts 40, labels 3" in text and "calibrator: platt (bce loss)" in text
    assert "dog.n.01" in text


def test_curate_filter_export_and_card_json(mixed_source, tmp_path, capsys):
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    path, _ = mixed_source
    ds = tmp_path / "ds"
    ingest(open_source(path, "jsonl", name="feed"), ds, cfg=IngestConfig(workers=1))
    argv = ["-q", "curate", "filter", str(ds), "--set", "filters=[exposure, contrast]"]
    assert main(argv) == 0
    people = capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["samples"] == counts["passed"] + sum(counts["rejected"].values())
    assert people.startswith(f"samples: {counts['samples']} = {counts['passed']} passed + "
                             f"{sum(counts['rejected'].values())} rejected")
    assert main(["-q", "curate", "export", str(ds), "--out", str(tmp_path / "cur"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["samples_kept"] == counts["passed"]
    assert main(["-q", "card", str(ds), "--out", str(tmp_path / "CARD.md"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(tmp_path / "CARD.md")
