import json

import duckdb
import pytest
from PIL import ImageFilter

from tagsight.curate.chain import CURATION_INFO, CurateConfig, FilterSpec, read_curation, run_filters
from tagsight.curate.export import ExportConfig, export_curated, selection
from tagsight.curate.reviews import append_reviews, read_reviews, specialist_means
from tagsight.data.index import SampleIndex
from tagsight.schema.catalog import load_manifest
from tagsight.privacy.tombstones import Tombstone, add_tombstones



@pytest.fixture
def pictures(make_photo):
    def draw(n):
        img = make_photo(n, (96, 72))
        return img.filter(ImageFilter.GaussianBlur(3)) if n % 3 == 0 else img  # every third photo blurred
    return draw


CHAIN = CurateConfig((FilterSpec("popularity", {"min_likes": 1}), FilterSpec("blur"), FilterSpec("exposure")))


def test_chain_records_every_score_and_reason_and_counts_reconcile(tiny_dataset, pictures):
    ds = tiny_dataset(posts=6, pictures=pictures, max_side=96)
    info = run_filters(ds, CHAIN)
    table = read_curation(ds).to_pylist()
    assert info["samples"] == len(table) == 9
    assert info["passed"] + sum(info["rejected"].values()) == info["samples"]
    by_key = {r["key"]: r for r in table}
    index = SampleIndex.build(ds)
    for i, key in enumerate(index.keys):
        row = by_key[key]
        post = int(index.post_keys[i].rsplit("p", 1)[1])
        if post == 0:   # p0 has 0 likes: rejected first, later filters never scored it
            assert (row["stage"], row["reason"], row["laplacian_var"]) == ("popularity", "unpopular", None)
    assert info["rejected"]["unpopular"] == 1 and info["rejected"].get("blurry", 0) >= 2
    assert json.loads((ds / CURATION_INFO).read_text())["passed"] == info["passed"]
    # plain DuckDB reads the catalog table
    [(n,)] = duckdb.sql(f"select count(*) from '{ds}/catalog/curation.parquet' where reason = 'blurry'").fetchall()
    assert n == info["rejected"]["blurry"]


def test_score_all_scores_rejected_samples_too(tiny_dataset, pictures):
    ds = tiny_dataset(posts=6, pictures=pictures, max_side=96)
    run_filters(ds, CurateConfig(CHAIN.filters, score_all=True))
    assert all(r["laplacian_var"] is not None for r in read_curation(ds).to_pylist())


def test_forgotten_posts_are_never_curated(tiny_dataset, pictures):
    ds = tiny_dataset(posts=6, pictures=pictures, max_side=96)
    add_tombstones(ds, [Tombstone("author", "a1")])
    run_filters(ds, CHAIN)
    assert not [r for r in read_curation(ds).to_pylist() if r["post_key"].endswith(("/p1", "/p4"))]


def test_export_stages_filter_then_generalist_then_specialist(tiny_dataset, tmp_path, pictures):
    ds = tiny_dataset(posts=6, pictures=pictures, max_side=96)
    run_filters(ds, CHAIN)
    passed = [r for r in read_curation(ds).to_pylist() if r["status"] == "passed"]
    assert len(passed) >= 3
    a, b, c = passed[:3]
    append_reviews(ds, [{"key": r["key"], "post_key": r["post_key"], "reviewer": "g1", "stage": "generalist",
                         "decision": "keep" if r is not c else "reject"} for r in passed])
    ratings = {a["key"]: 5, b["key"]: 2}
    append_reviews(ds, [{"key": k, "post_key": "x", "reviewer": "s1", "stage": "specialist", "caption": "a photo",
                         **dict.fromkeys(("composition", "lighting", "colour", "subject", "storytelling"), v)}
                        for k, v in ratings.items()])
    assert specialist_means(read_reviews(ds))[a["key"]] == 5
    sel = selection(ds, ExportConfig("specialist", min_rating=3.5))
    assert [k for k, why in sel.items() if why is None] == [a["key"]]
    assert sel[b["key"]] == "specialist_below" and sel[c["key"]] == "generalist_rejected"
    summary = export_curated(ds, tmp_path / "best", ExportConfig("specialist"))
    assert summary.samples_kept == 1 and summary.samples_in == 9
    manifest = load_manifest(tmp_path / "best")
    assert manifest["parent"]["version"] == load_manifest(ds)["version"]
    assert manifest["derivation"]["kind"] == "curate_specialist"
    assert SampleIndex.build(tmp_path / "best").keys == [a["key"]]


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="twice"):
        CurateConfig((FilterSpec("blur"), FilterSpec("blur")))
    with pytest.raises(ValueError, match="filters\\[0\\]: unknown curation filter 'exposur'; did you mean"):
        CurateConfig.from_dict({"filters": ["exposur"]})
    with pytest.raises(ValueError, match="unknown curation config"):
        CurateConfig.from_dict({"filter": []})
    with pytest.raises(ValueError, match="specialist rating"):
        from tagsight.curate.reviews import check_review
        check_review({"key": "k", "post_key": "p", "reviewer": "r", "stage": "specialist", "composition": 7})


def test_export_of_an_empty_stage_is_refused_and_writes_nothing(tiny_dataset, tmp_path, pictures):
    from tagsight.cli import main
    from tagsight.fsio import ReasonError

    ds = tiny_dataset(posts=6, pictures=pictures, max_side=96)
    run_filters(ds, CHAIN)   # some pass the filters, but nobody reviewed anything
    with pytest.raises(ReasonError, match="generalist_rejected: [0-9]") as info:
        export_curated(ds, tmp_path / "best", ExportConfig("specialist"))
    assert info.value.reason == "empty_stage" and not (tmp_path / "best").exists()
    assert main(["-q", "curate", "export", str(ds), "--stage", "specialist", "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "cli").exists()
    assert export_curated(ds, tmp_path / "filtered", ExportConfig("filter")).samples_kept >= 3  # a stage with samples
