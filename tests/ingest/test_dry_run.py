import os
from collections import Counter

from tagsight.schema import catalog
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, dry_run, ingest, media_presence
from tagsight.ingest.sources import open_source
from tagsight.ingest.tree import open_tree
from tagsight.privacy.policy import ConsentPolicy
from tests.ingest.archives import zip_folder
from tests.ingest.sources import instagram_exports as ig

CFG = IngestConfig(workers=1, chunk_size=5, image=ImageConfig(max_side=32, max_pixels=500_000))
PATH_REASONS = {"media_missing", "path_escapes_root", "remote_media_unsupported", "media_not_a_file"}


def snapshot(root):
    return {p: os.stat(p).st_mtime_ns for p in root.rglob("*")}


def test_a_dry_run_writes_nothing_and_agrees_with_the_real_run(mixed_source, tmp_path):
    src, _ = mixed_source
    policy = ConsentPolicy(optout_files=(str(src.parent / "optout.txt"),))
    before = snapshot(tmp_path)
    report = dry_run(open_source(src, "jsonl", name="t"), policy, tmp_path / "ds")
    assert snapshot(tmp_path) == before and not (tmp_path / "ds").exists()
    assert report.reconciles() and report.source["format"] == "jsonl" and report.source["container"] == "folder"
    assert sum(report.visibility.values()) <= report.posts_in and report.visibility["public"] > 0

    summary = ingest(open_source(src, "jsonl", name="t"), tmp_path / "ds", policy, CFG)
    decisions = catalog.read_table(tmp_path / "ds", "decisions").to_pylist()
    refused = Counter(d["reason"] for d in decisions if d["stage"] in ("source", "policy"))
    assert report.posts_in == summary.posts_in and report.refused == refused
    assert report.eligible == sum(d["stage"] == "media" for d in decisions)
    assert report.media_in == summary.media_in
    real_path_reasons = {r: n for r, n in summary.media_reasons.items() if r in PATH_REASONS}
    assert dict(report.media_problems) == real_path_reasons  # what is checked without decoding matches exactly


def test_a_dry_run_of_a_private_instagram_zip_reports_era_visibility_and_refusals(tmp_path):
    root = ig.json_export(tmp_path / "instagram-jane.doe-2025", "2025", private=True)
    (root / "media/posts/202302/330000002_n_1790003.jpg").unlink()
    zipped = zip_folder(root, tmp_path / "instagram-jane.doe-2025.zip")
    report = dry_run(open_source(zipped))
    assert report.source["era"] == "2025 on" and report.source["container"] == "zip"
    assert "private" in report.source["account"]
    assert report.posts_in == 3 and report.eligible == 0 and dict(report.refused) == {"visibility_followers": 3}
    assert dict(report.visibility) == {"followers": 3} and report.media_in == 0 and report.reconciles()
    public = dry_run(open_source(zipped), ConsentPolicy(allowed_visibility=("public", "followers")))
    assert public.eligible == 3 and public.media_in == 4 and public.media_present == 3
    assert dict(public.media_problems) == {"media_missing": 1} and public.media_not_images == 1
    text = public.format()
    assert "3 found = 3 eligible + 0 refused" in text and "media_missing" in text and "nothing was written" in text


def test_media_presence_gives_the_ingest_reason_codes(tmp_path):
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.jpg").write_bytes(b"x")
    os.symlink(tmp_path, root / "out")
    for tree in (open_tree(root), open_tree(zip_folder(root / "sub", tmp_path / "z.zip", prefix="sub/"))):
        prefix = "sub/" if tree.kind == "folder" else ""
        assert media_presence(tree, f"{prefix}a.jpg") == "present"
        assert media_presence(tree, f"{prefix}b.jpg") == "media_missing"
        assert media_presence(tree, "../a.jpg") == "path_escapes_root"
        assert media_presence(tree, "https://x.example/a.jpg") == "remote_media_unsupported"
    assert media_presence(open_tree(root), "sub") == "media_not_a_file"
    (tmp_path / "secret.jpg").write_bytes(b"x")
    assert media_presence(open_tree(root), "out/secret.jpg") == "path_escapes_root"
