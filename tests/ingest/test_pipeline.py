import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import duckdb
import pytest
from PIL import Image

from tagsight.ingest import pipeline
from tagsight.schema import catalog
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.privacy.policy import ConsentPolicy

CFG = IngestConfig(samples_per_shard=4, workers=1, chunk_size=5, image=ImageConfig(max_side=32, max_pixels=500_000))


def run(src, out, cfg=CFG):
    policy = ConsentPolicy(optout_files=(str(src.parent / "optout.txt"),))
    return ingest(open_source(src, "jsonl", name="t"), out, policy, cfg)


def shard_samples(dataset):
    for shard in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name in sorted(files):
            if name.endswith(".json"):
                yield json.loads(files[name]), files[name[:-5] + ".jpg"]


def test_mixed_corpus_reconciles_with_a_reason_for_every_rejection(mixed_source, tmp_path):
    src, expect = mixed_source
    summary = run(src, tmp_path / "ds")
    assert summary.reconciles()
    assert summary.posts_in == len(expect) + 1  # the duplicated post id counts twice: once kept, once rejected
    decisions = catalog.read_table(tmp_path / "ds", "decisions").to_pylist()
    by_id = {}
    for d in decisions:
        by_id.setdefault(d["post_id"], []).append(d)
    for pid, reason in expect.items():
        if pid.startswith("<"):
            assert any(d["reason"] == reason for d in decisions), reason
            continue
        got = [d["reason"] or None for d in by_id[pid]]
        assert reason in got, (pid, got)
    assert summary.post_reasons["malformed_json"] == 1 and summary.post_reasons["invalid_utf8"] == 1


def test_media_reasons_are_specific(mixed_source, tmp_path):
    src, _ = mixed_source
    run(src, tmp_path / "ds")
    media = {(m["post_id"], m["media_index"]): m for m in catalog.read_table(tmp_path / "ds", "media").to_pylist()}
    assert media[("trunc", 0)]["reason"] == "truncated_image"
    assert media[("zero", 0)]["reason"] == "media_empty"
    assert media[("text", 0)]["reason"] == "not_an_image"
    assert media[("bomb", 0)]["reason"] == "too_many_pixels"
    for pid in ("symlink", "dotdot", "absolute"):
        assert media[(pid, 0)]["reason"] == "path_escapes_root", pid
    assert media[("remote", 0)]["reason"] == "remote_media_unsupported"
    assert media[("repost", 0)]["reason"] == "exact_duplicate"
    assert media[("near", 0)]["reason"] == "near_duplicate"
    assert [media[("multi", i)]["status"] for i in range(3)] == ["rejected", "rejected", "ok"]
    assert media[("multi", 0)]["reason"] == "exact_duplicate"  # ok3.jpg was kept first


def test_nothing_excluded_and_no_metadata_reaches_a_shard(mixed_source, tmp_path):
    src, expect = mixed_source
    summary = run(src, tmp_path / "ds")
    kept_ids = {pid for pid, reason in expect.items() if reason is None} | {"ok0"}
    samples = list(shard_samples(tmp_path / "ds"))
    assert {meta["post_id"] for meta, _ in samples} == kept_ids
    assert len(samples) == summary.media_kept
    for _, jpg in samples:
        img = Image.open(io.BytesIO(jpg))
        assert img.format == "JPEG" and max(img.size) <= 32
        assert not img.getexif() and not {"exif", "icc_profile", "xmp", "comment"} & set(img.info)
        assert b"Exif" not in jpg and b"GPS" not in jpg and b"PhoneMaker" not in jpg
    assert summary.gps_removed == 2  # ok0 and ok2 carried GPS
    rotated = next(j for m, j in samples if m["post_id"] == "rotated")
    assert Image.open(io.BytesIO(rotated)).size == (16, 32)  # 60x30 turned by EXIF orientation 6


def test_rejected_posts_leave_only_a_decision_in_the_catalog(mixed_source, tmp_path):
    src, _ = mixed_source
    run(src, tmp_path / "ds")
    con = catalog.connect(tmp_path / "ds")
    leaked = con.execute("select count(*) from posts where post_id in ('private','refused','optout','noai')").fetchone()
    assert leaked == (0,)
    assert con.execute("select count(*) from hashtags where post_id = 'noai'").fetchone() == (0,)
    rows = con.execute("select reason, count(*) from decisions where status='rejected' group by 1").fetchall()
    assert dict(rows)["visibility_private"] == 1
    tags = con.execute("select tag, folded from hashtags where post_id='weird_tags' order by position").fetchall()
    assert tags[0] == ("café", "café") and tags[1] == ("dog\u200bsofinstagram", "dogsofinstagram")


def test_plain_duckdb_reads_the_catalog(mixed_source, tmp_path):
    src, _ = mixed_source
    run(src, tmp_path / "ds")
    path = tmp_path / "ds" / "catalog" / "decisions.parquet"
    n = duckdb.sql(f"select count(*) from '{path}'").fetchall()[0][0]
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert n == manifest["counts"]["posts_in"]


def test_same_input_gives_the_same_version_whatever_the_workers(mixed_source, tmp_path):
    src, _ = mixed_source
    a = run(src, tmp_path / "a")
    b = run(src, tmp_path / "b", IngestConfig(**{**CFG.__dict__, "workers": 2, "chunk_size": 3}))
    assert a.version == b.version
    shas = [json.loads((tmp_path / d / "manifest.json").read_text())["shards"] for d in "ab"]
    assert shas[0] == shas[1]
    assert not (tmp_path / "a" / ".work").exists()


def test_policy_changes_change_the_version(mixed_source, tmp_path):
    src, _ = mixed_source
    a = run(src, tmp_path / "a")
    b = ingest(open_source(src, "jsonl", name="t"), tmp_path / "b", ConsentPolicy(), CFG)
    assert a.version != b.version and b.posts_kept == a.posts_kept + 1  # olga's post is in
    assert "author_opted_out" not in b.post_reasons


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["chunk", "shard", "catalog", "manifest"])
def test_interrupted_run_resumes_to_the_same_version(mixed_source, tmp_path, monkeypatch, where):
    src, _ = mixed_source
    clean = run(src, tmp_path / "clean")
    targets = {"chunk": (pipeline.ChunkCache, "_stored", 2), "shard": (pipeline.ShardWriter, "write", 5),
               "catalog": (pipeline.catalog, "write_table", 3), "manifest": (pipeline, "_write_manifest", 1)}
    owner, name, after = targets[where]
    original, calls = getattr(owner, name), {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= after:
            raise Crash(where)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    with pytest.raises(Crash):
        run(src, tmp_path / "ds")
    monkeypatch.setattr(owner, name, original)
    resumed = run(src, tmp_path / "ds")
    assert resumed.version == clean.version
    keys = [m["post_id"] + str(m["media_index"]) for m, _ in shard_samples(tmp_path / "ds")]
    assert len(keys) == len(set(keys)) == clean.media_kept
    assert not list((tmp_path / "ds").rglob(".*.tmp"))


def test_sigkill_then_rerun_gives_the_same_manifest_version(tmp_path, make_picture):
    src = tmp_path / "src"
    src.mkdir()
    lines = []
    for i in range(600):
        make_picture(i, (64, 64)).save(src / f"{i}.jpg")
        lines.append(json.dumps({"post_id": str(i), "author_id": "a", "created_at": 0, "visibility": "public",
                                 "media": [f"{i}.jpg"]}))
    (src / "posts.jsonl").write_text("\n".join(lines))
    cmd = [sys.executable, "-m", "tagsight.cli", "-q", "ingest", str(src / "posts.jsonl"), "--shard-size", "50",
           "--workers", "2", "--max-side", "32"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    subprocess.run(cmd + ["--out", str(tmp_path / "clean")], check=True, env=env, capture_output=True)
    clean = json.loads((tmp_path / "clean" / "manifest.json").read_text())["version"]
    for delay in (0.8, 1.6):
        proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "ds")], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    subprocess.run(cmd + ["--out", str(tmp_path / "ds")], check=True, env=env, capture_output=True)
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["version"] == clean


def test_a_post_row_is_the_post_as_a_dict_without_media(mixed_source):
    from tagsight.ingest.pipeline import _post_row
    from tagsight.ingest.sources import open_source
    from tagsight.schema.posts import Post

    src, _ = mixed_source
    posts = [p for p in open_source(src, "jsonl", name="t") if isinstance(p, Post)]
    assert len(posts) > 5
    for post in posts:
        d = post.to_dict()
        d.pop("media")
        d["consent_ai_training"] = d.pop("consent")["ai_training"]
        assert _post_row(post, 2) == {**d, "label": post.extra.get("label"), "n_media": 2}


def test_cached_blocks_give_back_their_rows_in_task_order(mixed_source, tmp_path):
    import pyarrow as pa

    from tagsight.ingest.blocks import ChunkCache
    from tagsight.ingest.images import ImageConfig
    from tagsight.ingest.sources import open_source

    src, _ = mixed_source
    source = open_source(src, "jsonl", name="t")
    tasks = [(m.path or "", m.sha256) for p in source if hasattr(p, "media") for m in p.media]
    cache = ChunkCache(tmp_path, source.tree, tasks, 3, ImageConfig(max_side=32))
    from tagsight.engines import EngineConfig, create_engine
    from tagsight.progress import Progress
    with create_engine(EngineConfig(workers=1)) as engine, Progress(len(tasks), "t", "img") as progress:
        cache.fill(engine, progress)
    expected = [row for path in cache.paths  # each block one Arrow IPC file
                for row in pa.ipc.open_file(pa.py_buffer(path.read_bytes())).read_all().select(["status", "jpeg"]).to_pylist()]
    assert list(cache.rows(["status", "jpeg"])) == expected and len(expected) == len(tasks)
    assert {r["status"] for r in expected} == {"ok", "rejected"}
