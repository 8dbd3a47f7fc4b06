import pytest

from tagsight.schema.posts import MAX_HASHTAGS, Media, Post
from tagsight.ingest.sources import Rejected, SourceError, open_source
from tagsight.ingest.sources.jsonl import JsonlSource


def test_a_jsonl_file_yields_posts_in_file_order_with_paths_relative_to_its_folder(jsonl_file):
    src = JsonlSource(jsonl_file)
    items = list(src)
    assert [p.post_id for p in items] == ["p0", "p1", "p2"]
    assert src.root == jsonl_file.parent and src.name == "posts"
    assert items[1] == Post.from_dict(items[1].to_dict(), source="posts")
    assert items[1].media == (Media(path="img/1.jpg"),) and items[1].hashtags == ("cat", "sunset")
    assert all(p.source == "posts" for p in items)


def test_a_folder_reads_its_jsonl_files_in_sorted_name_order(tmp_path, make):
    make.jsonl(tmp_path / "b.jsonl", [make.post(2)])
    make.jsonl(tmp_path / "a.jsonl", [make.post(1)])
    (tmp_path / "notes.txt").write_text("not posts")
    src = JsonlSource(tmp_path, name="feed")
    assert [p.post_id for p in src] == ["p1", "p2"]
    assert src.root == tmp_path and [p.source for p in src] == ["feed", "feed"]


def test_each_bad_line_is_rejected_with_its_reason_and_line_and_the_rest_loads(tmp_path, make):
    lines = [make.post(1), b"{\"post_id\": \"p2\", \"caption\": \"caf\xe9\"}", b"{not json", b"",
             b"   ", make.post(3, author_id=None), make.post(4, hashtags=[f"t{i}" for i in range(3000)]),
             [1, 2], make.post(5)]
    items = list(JsonlSource(make.jsonl(tmp_path / "mixed.jsonl", lines)))
    assert [i.post_id for i in items if isinstance(i, Post)] == ["p1", "p5"]
    rejected = [(r.ref, r.reason, r.post_id, r.author_id) for r in items if isinstance(r, Rejected)]
    assert rejected == [("mixed.jsonl:2", "invalid_utf8", None, None),
                        ("mixed.jsonl:3", "malformed_json", None, None),
                        ("mixed.jsonl:6", "missing_field:author_id", "p3", None),
                        ("mixed.jsonl:7", "too_many_hashtags", "p4", "u1"),
                        ("mixed.jsonl:8", "invalid_record", None, None)]
    assert str(MAX_HASHTAGS) in next(r.detail for r in items if isinstance(r, Rejected) and r.post_id == "p4")


def test_a_timestamp_out_of_range_is_a_rejection_not_a_crash(tmp_path, make):
    items = list(JsonlSource(make.jsonl(tmp_path / "t.jsonl", [make.post(1, created_at=10**30)])))
    assert isinstance(items[0], Rejected) and items[0].post_id == "p1"


def test_hashtags_with_zero_width_characters_and_emoji_survive_as_written(tmp_path, make):
    tags = ["cat\u200b", "🐱", "sun\u200dset", "café"]
    items = list(JsonlSource(make.jsonl(tmp_path / "u.jsonl", [make.post(1, hashtags=tags),
                                                                 make.post(2, hashtags=None, caption="x #dog\u200b 🐶")])))
    assert items[0].hashtags == tuple(tags)
    assert items[1].hashtags == ("dog\u200b",)


def test_a_byte_order_mark_on_the_first_line_is_ignored(tmp_path, make):
    path = make.jsonl(tmp_path / "bom.jsonl", [make.post(1)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert [p.post_id for p in JsonlSource(path)] == ["p1"]


def test_two_runs_yield_the_same_items(tmp_path, make):
    for name in ("c", "a", "b"):
        make.jsonl(tmp_path / f"{name}.jsonl", [make.post(i) for i in range(3)] + [b"{bad"])
    assert list(JsonlSource(tmp_path)) == list(JsonlSource(tmp_path))


def test_a_source_that_is_not_jsonl_is_a_source_error(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(SourceError, match="jsonl"):
        JsonlSource(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        open_source(tmp_path / "missing.jsonl", "jsonl")
