import json

import pytest

from tagsight.cli import build_parser, main


def test_help_explains_every_ingest_option(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    for option in ("--out", "--format", "--policy", "--optout", "--workers", "--max-side", "--blur-faces"):
        assert option in out


def test_every_verb_has_help():
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    assert {"ingest", "demo", "setup"} <= set(verbs)
    assert all(p.description or p.format_help() for p in verbs.values())


def test_missing_source_exits_2_with_a_message(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "ds")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_format_suggests_the_closest(tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text("")
    assert main(["ingest", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "ds"), "--format", "jsnl"]) == 2
    assert "did you mean 'jsonl'" in capsys.readouterr().err


def test_ingest_prints_a_reconciling_summary(mixed_source, tmp_path, capsys):
    src, _ = mixed_source
    code = main(["-q", "ingest", str(src), "--out", str(tmp_path / "ds"), "--optout", str(src.parent / "optout.txt"),
                 "--workers", "1", "--max-side", "32", "--shard-size", "3"])
    assert code == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    c = manifest["counts"]
    assert f"posts: {c['posts_in']} in = {c['posts_kept']} kept + {c['posts_rejected']} rejected" in out
    assert "author_opted_out" in out and manifest["policy"]["optout_files"] == 1
    assert all(s["samples"] <= 3 for s in manifest["shards"])
