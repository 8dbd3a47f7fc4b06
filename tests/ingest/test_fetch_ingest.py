"""Ingest of URL sources: URL lists and posts with http(s) media, fetched from a server on 127.0.0.1."""

import csv
import hashlib
import json
import tarfile
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagsight.cli import main
from tagsight.schema import catalog
from tagsight.ingest.fetch import FetchConfig
from tagsight.ingest.images import ImageConfig
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import SourceError, open_source
from tests.ingest.webserver import Site

FETCH = FetchConfig(allow_private_addresses=True, timeout=1.0, total_timeout=4.0, retries=1, backoff=0.01, threads=4, per_host=2)
CFG = IngestConfig(samples_per_shard=4, workers=1, chunk_size=4, near_duplicate_radius=None,
                   image=ImageConfig(max_side=32, max_bytes=100_000), fetch=FETCH)
ROBOTS = "User-agent: tagsight\nDisallow: /private/\n"
TDMREP = [{"location": "/reserved/*", "tdm-reservation": 1}]

# (path, expected media reason or None when kept)
ROWS = [("/img/1.jpg", None), ("/noai/2.jpg", "optout_x_robots_tag"), ("/flaky/3.jpg", None),
        ("/private/4.jpg", "optout_robots_txt"), ("/tdm/5.jpg", "optout_tdm_reservation"),
        ("/reserved/6.jpg", "optout_tdm_reservation"), ("/redirect/7.jpg", None), ("/slow.jpg", "fetch_timeout"),
        ("/big.jpg", "file_too_large"), ("/page.jpg", "unsupported_content_type"),
        ("/mislabelled.jpg", "not_an_image"), ("/gone.jpg", "fetch_failed:404"), ("/img/8.jpg", None),
        ("/cdn/9.jpg", None)]
OPTED_OUT = [p for p, r in ROWS if r and r.startswith("optout_")]


@pytest.fixture
def site():
    with Site(robots=ROBOTS, tdmrep=TDMREP, slow_s=2.5) as s:
        yield s


def write_csv(path, site, rows=ROWS, url_col="URL", caption_col="TEXT"):
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([url_col, caption_col, "extra"])
        for i, (p, _) in enumerate(rows):
            w.writerow([site.url(p), f"photo {i} #tag{i % 3}", "x"])
    return path


def samples(dataset):
    out = []
    for shard in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            out += [json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")]
    return out


def pid(url):
    """A URL-list row's post id."""
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def by_url(dataset, site, rows=ROWS):
    media = {m["post_id"]: m for m in catalog.read_table(dataset, "media").to_pylist()}
    return {site.url(p): media[pid(site.url(p))] for p, _ in rows}


def test_a_url_list_is_fetched_with_a_named_reason_for_every_failure(site, tmp_path):
    src = open_source(write_csv(tmp_path / "list.csv", site), "urls", url_col="URL", caption_col="TEXT")
    summary = ingest(src, tmp_path / "ds", cfg=CFG)
    assert summary.reconciles()
    assert summary.posts_in == len(ROWS) and summary.media_in == len(ROWS)
    assert summary.media_kept == sum(r is None for _, r in ROWS) == summary.posts_kept
    media = by_url(tmp_path / "ds", site)
    for path, expected in ROWS:
        m = media[site.url(path)]
        assert (m["reason"] or None) == expected, path
        assert m["path"] == (None if path in OPTED_OUT else site.url(path))
    kept = samples(tmp_path / "ds")
    assert len(kept) == summary.media_kept
    assert {s["caption"] for s in kept} >= {"photo 0 #tag0"} and kept[0]["hashtags"] == ["tag0"]
    assert {s["author_id"] for s in kept} == {"127.0.0.1"}


def test_an_opted_out_image_reaches_no_shard_cache_or_catalog_content(site, tmp_path):
    src = open_source(write_csv(tmp_path / "list.csv", site), "urls", url_col="URL", caption_col="TEXT")
    ingest(src, tmp_path / "ds", cfg=CFG)
    ds = tmp_path / "ds"
    media = by_url(ds, site)
    decisions = {d["ref"]: d for d in catalog.read_table(ds, "decisions").to_pylist()}
    posts = {p["post_id"] for p in catalog.read_table(ds, "posts").to_pylist()}
    kept_ids = {s["post_id"] for s in samples(ds)}
    for path in OPTED_OUT:
        m = media[site.url(path)]
        assert m["status"] == "rejected" and m["reason"].startswith("optout_")
        assert m["sha256"] is None and m["phash"] is None and m["width"] is None and m["sample_key"] is None
        assert m["path"] is None and m["alt_text"] is None
        assert m["post_id"] not in posts and m["post_id"] not in kept_ids
        d = decisions[f"{src.name}/{m['post_id']}"]
        assert d["status"] == "rejected" and d["reason"] == m["reason"]
    assert not (ds / ".work").exists()
    stored = (ds / "manifest.json").read_text() + "".join(
        json.dumps(catalog.read_table(ds, t).to_pylist(), default=str) for t in catalog.TABLES)
    for path in OPTED_OUT:  # the URL of an opted-out image is nowhere in the dataset
        assert site.url(path) not in stored and path not in stored
    assert site.url("/img/1.jpg") in stored
    assert catalog.read_table(ds, "hashtags").num_rows == sum(1 for _ in posts)
    # the body of a header opt-out was never read and a robots.txt/TDM-Rep opt-out was never requested
    assert "/private/4.jpg" not in site.requests and "/reserved/6.jpg" not in site.requests


def test_the_same_answers_give_the_same_version_whatever_the_concurrency(tmp_path):
    rows = [(p, r) for p, r in ROWS if p not in ("/slow.jpg", "/flaky/3.jpg")]  # answers that never change
    versions, orders = [], []
    with Site(robots=ROBOTS, tdmrep=TDMREP, delay_s=0.01) as site:
        lst = write_csv(tmp_path / "list.csv", site, rows)
        for i, (threads, workers, chunk) in enumerate([(1, 1, 4), (8, 2, 4), (3, 2, 2)]):
            cfg = replace(CFG, workers=workers, chunk_size=chunk, fetch=replace(FETCH, threads=threads))
            src = open_source(lst, "urls", name="list", url_col="URL", caption_col="TEXT")
            versions.append(ingest(src, tmp_path / f"ds{i}", cfg=cfg).version)
            orders.append([m["post_id"] for m in catalog.read_table(tmp_path / f"ds{i}", "media").to_pylist()])
    assert len(set(versions)) == 1, versions
    assert orders[0] == orders[1] == orders[2] == [pid(site.url(p)) for p, _ in rows]  # source order


def test_posts_in_our_schema_with_url_media_are_fetched_only_when_fetching_is_on(site, tmp_path):
    lines = [{"post_id": f"p{i}", "author_id": "a", "created_at": "2024-05-01T10:00:00Z", "visibility": "public",
              "caption": "#x", "media": [{"url": site.url(f"/img/{i}.jpg")}, site.url(f"/noai/{10 + i}.jpg")]}
             for i in range(3)]
    (tmp_path / "posts.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    off = ingest(open_source(tmp_path / "posts.jsonl", "jsonl"), tmp_path / "off",
                 cfg=replace(CFG, fetch=None))
    assert off.media_reasons == {"remote_media_unsupported": 6} and not site.requests
    on = ingest(open_source(tmp_path / "posts.jsonl", "jsonl"), tmp_path / "on", cfg=CFG)
    assert on.media_kept == 3 and on.media_reasons == {"optout_x_robots_tag": 3} and on.reconciles()
    table = pa.Table.from_pylist([{**line, "media": [{"url": m} if isinstance(m, str) else m for m in line["media"]]}
                                  for line in lines])
    pq.write_table(table, tmp_path / "posts.parquet")
    pq_summary = ingest(open_source(tmp_path / "posts.parquet", "parquet"), tmp_path / "pq", cfg=CFG)
    assert pq_summary.media_kept == 3


def test_a_sha256_declared_for_a_url_is_checked(site, tmp_path):
    line = {"post_id": "p", "author_id": "a", "created_at": "2024-05-01T10:00:00Z", "visibility": "public",
            "media": [{"url": site.url("/img/1.jpg"), "sha256": "0" * 64}]}
    (tmp_path / "posts.jsonl").write_text(json.dumps(line))
    summary = ingest(open_source(tmp_path / "posts.jsonl", "jsonl"), tmp_path / "ds", cfg=CFG)
    assert summary.media_reasons == {"sha256_mismatch": 1}


def test_url_list_formats_and_columns(site, tmp_path):
    urls = [site.url(f"/img/{n}.jpg") for n in range(3)]
    (tmp_path / "a.txt").write_text("\n".join(urls) + "\n\n")
    (tmp_path / "b.tsv").write_text("url\tcaption\n" + "".join(f"{u}\tcap {i}\n" for i, u in enumerate(urls)))
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"url": u, "caption": "c"}) for u in urls)
                                      + "\n{not json\n" + json.dumps({"caption": "no url"}) + "\n")
    pq.write_table(pa.table({"url": urls + ["ftp://127.0.0.1/x.jpg"], "caption": ["p", None, "q", "r"]}),
                   tmp_path / "d.parquet")
    src = open_source(tmp_path, "urls")
    items = list(src)
    posts = [i for i in items if hasattr(i, "post_id") and not hasattr(i, "reason")]
    rejected = {i.ref: i.reason for i in items if hasattr(i, "reason")}
    assert len(posts) == 12
    assert rejected == {"c.jsonl:4": "malformed_json", "c.jsonl:5": "missing_field:url", "d.parquet[3]": "invalid_url"}
    assert posts[0].media[0].url == urls[0] and posts[0].caption == "" and posts[3].caption == "cap 0"
    assert posts[0].post_id == posts[3].post_id  # the id is the URL's hash
    assert posts[0].visibility == "public" and posts[0].author_id == "127.0.0.1"
    with pytest.raises(SourceError, match="no 'link' column"):
        list(open_source(tmp_path / "b.tsv", "urls", url_col="link"))
    (tmp_path / "nothing.bin").write_bytes(b"x")
    with pytest.raises(SourceError, match="not a URL list"):
        open_source(tmp_path / "nothing.bin", "urls")


def test_cli_ingests_a_url_list_and_dry_runs_it(site, tmp_path, capsys):
    lst = write_csv(tmp_path / "list.csv", site, ROWS[:3], url_col="link", caption_col="alt")
    assert main(["ingest", str(lst), "--out", str(tmp_path / "dry"), "--format", "urls", "--url-col", "link",
                 "--caption-col", "alt", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 are URLs, fetched" in out and not site.requests
    args = ["ingest", str(lst), "--format", "urls", "--url-col", "link", "--caption-col", "alt", "--workers", "1",
            "--fetch-timeout", "2", "--fetch-retries", "1", "--fetch-threads", "2", "--fetch-per-host", "1",
            "--max-side", "32"]
    assert main(args + ["--out", str(tmp_path / "refused")]) == 0  # by default 127.0.0.1 is out of reach
    assert "3 in = 0 kept + 3 rejected" in capsys.readouterr().out and not site.requests
    refused = pq.read_table(tmp_path / "refused" / "catalog" / "media.parquet").to_pylist()
    assert {m["reason"] for m in refused} == {"private_address"}
    assert main(args + ["--out", str(tmp_path / "ds"), "--allow-private-addresses"]) == 0
    out = capsys.readouterr().out
    assert "optout_x_robots_tag" in out and "3 in = 2 kept + 1 rejected" in out
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["config"]["fetch"]["disallowed_directives"] == ["noai", "noimageai", "noindex", "noimageindex"]
    assert "threads" not in manifest["config"]["fetch"]
    assert main(["ingest", str(lst), "--out", str(tmp_path / "x"), "--format", "folder", "--url-col", "link"]) == 2
    assert "--url-col" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path), "--out", str(tmp_path / "x"), "--format", "folder",
                 "--fetch-threads", "2"]) == 2
    assert "only with --fetch" in capsys.readouterr().err


def test_a_rerun_reuses_fetched_chunks_without_asking_the_server_again(tmp_path, monkeypatch):
    from tagsight.ingest import pipeline

    rows = [(p, r) for p, r in ROWS if p not in ("/slow.jpg", "/flaky/3.jpg")]
    with Site(robots=ROBOTS, tdmrep=TDMREP) as site:
        lst = write_csv(tmp_path / "list.csv", site, rows)
        src = open_source(lst, "urls", name="list", url_col="URL", caption_col="TEXT")
        monkeypatch.setattr(pipeline.ChunkCache, "clear", lambda self: None)  # as if killed before the end
        first = ingest(src, tmp_path / "ds", cfg=CFG)
        cached = [r for f in sorted((tmp_path / "ds" / ".work").iterdir())
                  for r in pa.ipc.open_file(pa.py_buffer(f.read_bytes())).read_all().to_pylist()]
        opted = [r for r in cached if r["reason"].startswith("optout_")]
        assert len(opted) == sum(p in OPTED_OUT for p, _ in rows) > 0
        assert all(r["jpeg"] is None and r["sha256"] is None and r["phash"] is None for r in opted)
        assert not any(site.origin + p in r["detail"] for r in opted for p in OPTED_OUT)
        assert sum(r["jpeg"] is not None for r in cached) == first.media_kept
    # the server is gone: every chunk must come from the cache
    second = ingest(open_source(lst, "urls", name="list", url_col="URL", caption_col="TEXT"), tmp_path / "ds", cfg=CFG)
    assert second.version == first.version and second.media_kept == first.media_kept
    monkeypatch.undo()
    third = ingest(open_source(lst, "urls", name="list", url_col="URL", caption_col="TEXT"), tmp_path / "ds",
                   cfg=replace(CFG, fetch=replace(FETCH, retries=0, robots_txt=False)))
    assert third.media_kept == 0  # other fetch settings: nothing reused, and the server is gone


def test_a_slow_url_does_not_hold_back_the_next_chunk(tmp_path):
    rows = [("/slow.jpg", None), ("/img/1.jpg", None), ("/img/2.jpg", None), ("/img/3.jpg", None)]
    with Site(slow_s=1.0) as site:
        lst = write_csv(tmp_path / "list.csv", site, rows)
        cfg = replace(CFG, chunk_size=2, fetch=replace(FETCH, timeout=3.0))
        summary = ingest(open_source(lst, "urls", url_col="URL", caption_col="TEXT"), tmp_path / "ds", cfg=cfg)
        assert summary.media_kept == 4
        # chunk 1 (/img/2, /img/3) was fetched while chunk 0's slow answer was still pending
        assert site.arrived["/img/3.jpg"] < site.arrived["/slow.jpg"] + 0.8


def test_an_optout_list_can_name_a_whole_site_and_nothing_is_fetched_from_it(site, tmp_path):
    from tagsight.privacy.policy import ConsentPolicy

    (tmp_path / "optout.txt").write_text("127.0.0.1\n")
    lst = write_csv(tmp_path / "list.csv", site, ROWS[:3])
    summary = ingest(open_source(lst, "urls", url_col="URL", caption_col="TEXT"), tmp_path / "ds",
                     ConsentPolicy(optout_files=(str(tmp_path / "optout.txt"),)), cfg=CFG)
    assert summary.posts_kept == 0 and summary.posts_in == 3 and summary.media_in == 0
    assert not site.requests  # the consent gate runs before any fetch
