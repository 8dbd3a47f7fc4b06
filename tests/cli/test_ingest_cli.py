import json

import pytest

from tagsight.cli import build_parser, main


def test_help_explains_every_ingest_option(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    for option in ("--out", "--format", "--config", "--set", "--json", "--optout", "--workers", "--max-side", "--blur-faces", "--dry-run"):
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


def test_an_instagram_zip_is_ingested_as_instagram_not_as_a_folder(tmp_path, capsys):
    from tests.ingest.archives import zip_folder
    from tests.ingest.sources import instagram_exports as ig

    root = ig.json_export(tmp_path / "instagram-jane.doe-2025", "2025")
    zipped = zip_folder(root, tmp_path / "dl" / "instagram-jane.doe-2025.zip", prefix="instagram-jane.doe-2025/")
    assert main(["-q", "ingest", str(zipped), "--out", str(tmp_path / "ds"), "--workers", "1", "--max-side", "32"]) == 0
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["source"] == {"format": "instagram", "name": "instagram-jane.doe-2025"}
    assert manifest["counts"]["posts_in"] == 3 and manifest["counts"]["posts_kept"] == 2
    assert "posts: 3 in = 2 kept + 1 rejected" in capsys.readouterr().out


def test_dry_run_reports_and_writes_nothing(tmp_path, capsys):
    from tests.ingest.sources import instagram_exports as ig

    root = ig.html_export(tmp_path / "export", "2022", private=True)
    assert main(["-q", "ingest", str(root), "--out", str(tmp_path / "ds"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "ds").exists()
    assert "era: 2020-2023" in out and "package: html" in out and "posts: 3 found = 0 eligible + 3 refused" in out
    assert "visibility_followers" in out and "visibility: 3 followers" in out


@pytest.mark.parametrize("case", ["truncated", "zip-slip", "not-an-export"])
def test_an_archive_that_cannot_be_read_exits_2_with_the_reason(tmp_path, capsys, case):
    from tests.ingest.archives import truncate, zip_folder, zip_with
    from tests.ingest.sources import instagram_exports as ig

    if case == "truncated":
        path, message = truncate(zip_folder(ig.json_export(tmp_path / "e"), tmp_path / "e.zip")), "truncated"
    elif case == "zip-slip":
        path, message = zip_with(tmp_path / "e.zip", [("a.json", b"{}"), ("../../x.jpg", b"x")]), "'..'"
    else:
        path, message = zip_with(tmp_path / "e.zip", [("a.txt", b"hi"), ("b.txt", b"x")]), "holds no export"
    assert main(["-q", "ingest", str(path), "--out", str(tmp_path / "ds")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "ds").exists()


def test_visibility_reaches_every_source_that_takes_it_and_is_refused_where_it_does_not(tmp_path, capsys):
    from tests.ingest.sources.test_source_facebook import make_export

    root = make_export(tmp_path / "fb", "2023+")
    assert main(["-q", "ingest", str(root), "--out", str(tmp_path / "safe"), "--dry-run"]) == 0
    assert "0 eligible" in capsys.readouterr().out          # Facebook says no audience: followers by default
    assert main(["-q", "ingest", str(root), "--out", str(tmp_path / "pub"), "--dry-run", "--visibility", "public"]) == 0
    assert "0 eligible" not in capsys.readouterr().out
    (tmp_path / "p.jsonl").write_text("")
    assert main(["ingest", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "j"), "--visibility", "public"]) == 2
    assert "--visibility: not an option of jsonl sources" in capsys.readouterr().err


def _actions(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _actions(child, (*path, name))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield " ".join(path), action


def test_every_option_and_argument_of_every_verb_has_help():
    missing = [(verb, a.option_strings or a.dest) for verb, a in _actions(build_parser()) if not a.help]
    assert missing == []


def test_version_and_verbosity_anywhere_on_the_line(tmp_path, capsys):
    from tagsight import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"tagsight {__version__}"
    parser = build_parser()
    after = parser.parse_args(["ingest", "src", "--out", "d", "-q"])
    before = parser.parse_args(["-v", "ingest", "src", "--out", "d"])
    plain = parser.parse_args(["ingest", "src", "--out", "d"])
    assert (after.quiet, after.verbose) == (True, False) and (before.verbose, before.quiet) == (True, False)
    assert (plain.quiet, plain.verbose) == (False, False)
    assert parser.parse_args(["curate", "report", "ds", "-v"]).verbose is True
