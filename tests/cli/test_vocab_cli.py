"""``tagsight vocab build`` and ``tagsight vocab show`` end to end on tiny fixtures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tagsight.cli import vocab as vocab_cli

TAG_LINES = ["brownbear love", "ursusarctos brownbear", "dog dogsofinstagram", "dog", "#Dog", "dogs beach",
             "beach", "beach paris", "throwbackthursday", "", "cake"]


def run(argv: list[str]) -> int:
    """Parse and run like the console script, with only the vocab verb registered."""
    parser = argparse.ArgumentParser(prog="tagsight")
    vocab_cli.register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def tagsonly(tmp_path: Path) -> Path:
    root = tmp_path / "harrison_like"
    root.mkdir()
    (root / "tag_list.txt").write_text("\n".join(TAG_LINES) + "\n", encoding="utf-8")
    return root


def test_build_tagsonly_writes_vocab_and_report(tagsonly: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "vocab"
    assert run(["vocab", "build", str(tagsonly), "--out", str(out), "--format", "tagsonly", "--min-count", "2"]) == 0
    data = json.loads((out / "vocab.json").read_text())
    assert [l["label"] for l in data["labels"]] == ["dog.n.01", "beach.n.01", "brown_bear.n.01"]
    assert data["labels"][2]["members"] == {"brownbear": 2, "ursusarctos": 1}
    assert data["input"]["kind"] == "tagsonly" and data["input"]["posts"] == 11 and data["input"]["rejected"] == 0
    assert data["config"]["min_count"] == 2
    reasons = {d["tag"]: d["reason"] for d in data["drops"]}
    assert reasons["cake"] == "below_min_count" and reasons["love"] == "stop_list"
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page
    printed = capsys.readouterr().out
    assert data["version"] in printed and "3 labels" in printed


def test_auto_format_and_options_and_same_version(tagsonly: Path, tmp_path: Path) -> None:
    argv = ["vocab", "build", str(tagsonly), "--min-count", "1", "--top-k", "2", "--sampling", "inverse",
            "--report", str(tmp_path / "r.html")]
    assert run(argv + ["--out", str(tmp_path / "a")]) == 0
    assert run(argv + ["--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "vocab.json").read_text())
    b = json.loads((tmp_path / "b" / "vocab.json").read_text())
    assert a["version"] == b["version"]
    assert len(a["labels"]) == 2 and a["config"]["sampling"] == "inverse"
    assert (tmp_path / "r.html").is_file()


def test_config_file_then_command_line(tagsonly: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "v.yaml"
    cfg.write_text("min_count: 1\ntop_k: 1\nrollup_depth: 6\n")
    assert run(["vocab", "build", str(tagsonly), "--out", str(tmp_path / "v"), "--config", str(cfg),
                "--top-k", "0"]) == 0
    data = json.loads((tmp_path / "v" / "vocab.json").read_text())
    assert data["config"]["top_k"] is None and data["config"]["rollup_depth"] == 6
    assert data["labels"][0]["label"] == "animal.n.01"          # dog and brown bear rolled up to depth 6


def test_dataset_input_reads_kept_posts_and_records_the_manifest(tmp_path: Path) -> None:
    from tagsight.schema.catalog import write_table

    dataset = tmp_path / "ds"
    rows = [{"source": "s", "post_id": str(i), "author_id": "a", "created_at": "2024-01-01T00:00:00Z",
             "visibility": "public", "hashtags": tags, "n_media": 1} for i, tags in enumerate(
             [["#dog"], ["#Dogs", "#love"], ["#beach"], ["#dogsofinstagram"]])]
    write_table(dataset, "posts", rows)
    (dataset / "manifest.json").write_text(json.dumps({"version": "ds-v1"}))
    assert run(["vocab", "build", str(dataset), "--out", str(tmp_path / "v"), "--min-count", "1"]) == 0
    data = json.loads((tmp_path / "v" / "vocab.json").read_text())
    assert data["input"]["kind"] == "dataset" and data["input"]["manifest_version"] == "ds-v1"
    assert data["labels"][0]["label"] == "dog.n.01" and data["labels"][0]["posts"] == 3


def test_show_prints_a_table(tagsonly: Path, tmp_path: Path, capsys) -> None:
    run(["vocab", "build", str(tagsonly), "--out", str(tmp_path / "v"), "--min-count", "1"])
    capsys.readouterr()
    assert run(["vocab", "show", str(tmp_path / "v"), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "coverage" in lines[0] and lines[1].startswith("drops:")
    assert "dog.n.01" in lines[3] and "#dogsofinstagram" in lines[3]
    assert len(lines) == 5


@pytest.mark.parametrize("extra, message", [
    (["--min-count", "0"], "min_count must be an integer >= 1"),
    (["--config", "missing.yaml"], "missing.yaml"),
])
def test_bad_options_exit_2_with_a_message(tagsonly: Path, tmp_path: Path, capsys, extra, message) -> None:
    assert run(["vocab", "build", str(tagsonly), "--out", str(tmp_path / "v")] + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_missing_input_and_missing_vocab_exit_2(tmp_path: Path, capsys) -> None:
    assert run(["vocab", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "v")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run(["vocab", "show", str(tmp_path)]) == 2
    assert "tagsight vocab build" in capsys.readouterr().err


def test_build_and_show_json_carry_what_people_see(tagsonly: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "vocab"
    assert run(["vocab", "build", str(tagsonly), "--out", str(out), "--set", "min_count=2", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["labels"] == 3 and built["coverage"]["posts"] == 11 and built["vocab"] == str(out / "vocab.json")
    assert json.loads((out / "vocab.json").read_text())["config"]["min_count"] == 2
    assert run(["vocab", "show", str(out), "--top", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [t["label"] for t in shown["top"]] == ["dog.n.01", "beach.n.01"] and shown["labels"] == 3
    assert run(["vocab", "show", str(out), "--top", "2"]) == 0
    assert "dog.n.01" in capsys.readouterr().out


def test_set_is_applied_after_the_flags_and_a_typo_is_refused(tagsonly: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "v"
    assert run(["vocab", "build", str(tagsonly), "--out", str(out), "--min-count", "5", "--set", "min_count=2"]) == 0
    assert json.loads((out / "vocab.json").read_text())["config"]["min_count"] == 2
    assert run(["vocab", "build", str(tagsonly), "--out", str(tmp_path / "w"), "--set", "topk=3"]) == 2
    assert "--set topk=3: unknown vocab config keys ['topk']; did you mean 'top_k'?" in capsys.readouterr().err
