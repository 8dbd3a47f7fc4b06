"""Input files at fsspec URLs (``memory://``: the code path of ``s3://`` without a server): ``ingest --optout``, a policy at a
URL naming its opt-out lists beside it, the deprecated ``ingest --policy URL``, ``forget --optout-file`` and ``serve
--admin-token-file``. Each is read through ``tagsight.storage.read_bytes``; a missing one is refused naming the URL."""

from __future__ import annotations

import json

import pytest

import tagsight.apps
from tagsight import cli
from tagsight.cli import main
from tagsight.data.index import SampleIndex
from tagsight.privacy.policy import ConsentPolicy, beside
from tagsight.storage import open_filesystem


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def put(url: str, text: str) -> str:
    fs, inner = open_filesystem(url)
    fs.pipe_file(inner, text.encode())
    return url


def ingest_args(src, out):
    return ["-q", "ingest", str(src), "--out", str(out), "--workers", "1", "--max-side", "32"]


def test_ingest_reads_opt_out_lists_and_a_policy_at_urls(mixed_source, tmp_path, capsys):
    src, _ = mixed_source
    store = f"memory://inputs-{tmp_path.name}"
    optout = put(f"{store}/lists/optout.txt", "# asked to be left out\nolga\n")
    assert main([*ingest_args(src, tmp_path / "a"), "--optout", optout]) == 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["policy"]["optout_files"] == 1 and manifest["policy"]["optout_authors"] == 1
    assert manifest["counts"]["post_reasons"]["author_opted_out"] == 1
    policy = put(f"{store}/policies/p.yaml", "optout_files: [../lists/optout.txt]\n")
    capsys.readouterr()
    assert main([*ingest_args(src, tmp_path / "b"), "--policy", policy]) == 0   # the hidden old flag keeps the URL
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["counts"]["post_reasons"]["author_opted_out"] == 1
    missing = f"{store}/lists/none.txt"
    assert main([*ingest_args(src, tmp_path / "c"), "--optout", missing]) == 2
    assert missing in capsys.readouterr().err
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_a_policy_at_a_url_finds_its_lists_beside_it_and_keeps_absolute_ones(tmp_path):
    assert beside("s3://b/policies/p.yaml", "../lists/o.txt") == "s3://b/lists/o.txt"
    assert beside("s3://b/policies/p.yaml", "o.txt") == "s3://b/policies/o.txt"
    assert beside("s3://b/policies/p.yaml", "s3://c/o.txt") == "s3://c/o.txt"
    assert beside("s3://b/policies/p.yaml", str(tmp_path / "o.txt")) == str(tmp_path / "o.txt")
    assert beside(tmp_path / "p.yaml", "o.txt") == str(tmp_path / "o.txt")
    store = f"memory://policy-{tmp_path.name}"
    put(f"{store}/lists/o.txt", "author:zed\npost:feed/1\n")
    policy = ConsentPolicy.from_yaml(put(f"{store}/p/policy.yaml", "optout_files: [../lists/o.txt]\n"))
    assert policy.optouts.authors == {"zed"} and policy.optouts.posts == {"feed/1"}
    with pytest.raises(ValueError, match=f"{store}/p/gone.txt does not exist"):
        ConsentPolicy.from_yaml(put(f"{store}/p/bad.yaml", "optout_files: [gone.txt]\n"))


def test_forget_reads_its_opt_out_file_at_a_url(tmp_path, mixed_source, capsys):
    from tagsight.ingest.pipeline import IngestConfig, ingest
    from tagsight.ingest.sources import open_source

    path, _ = mixed_source
    ds = tmp_path / "root" / "ds"
    ingest(open_source(path, "jsonl", name="feed"), ds, cfg=IngestConfig(workers=1))
    before = len(SampleIndex.build(ds))
    optout = put(f"memory://forget-{tmp_path.name}/optout.txt", "post:feed/ok1  # by request\n")
    args = ["--root", str(tmp_path / "root"), "--cache-dir", str(tmp_path / "none")]
    assert cli.main(["forget", "--optout-file", optout, *args]) == 0
    assert "tombstones added: 1" in capsys.readouterr().out
    assert len(SampleIndex.build(ds)) == before - 1
    missing = f"memory://forget-{tmp_path.name}/none.txt"
    assert cli.main(["forget", "--optout-file", missing, *args]) == 2
    err = capsys.readouterr().err
    assert "optout_file_missing" in err and missing in err


def test_serve_reads_its_admin_token_at_a_url_once_and_refuses_an_unreadable_one(tmp_path, capsys, monkeypatch):
    from tagsight.cli.serve import read_token

    store = f"memory://token-{tmp_path.name}"
    assert read_token(put(f"{store}/admin.token", "0123456789abcdef-secret\n")) == "0123456789abcdef-secret"
    monkeypatch.setattr(tagsight.apps, "load_apps", lambda b, d: {}, raising=False)
    put(f"{store}/short.token", "short")
    assert main(["serve", str(tmp_path), "--admin-token-file", f"{store}/short.token"]) == 2
    assert "at least 16 characters" in capsys.readouterr().err    # read from the store and checked
    assert main(["serve", str(tmp_path), "--admin-token-file", f"{store}/none.token"]) == 2
    err = capsys.readouterr().err
    assert "admin_token_unreadable" in err and f"{store}/none.token" in err
    put(f"{store}/empty.token", "\n")
    assert main(["serve", str(tmp_path), "--admin-token-file", f"{store}/empty.token"]) == 2
    assert "admin_token_empty" in capsys.readouterr().err
