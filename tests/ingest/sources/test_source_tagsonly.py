import os
from pathlib import Path

import pytest

from tagsight.schema.posts import Post
from tagsight.ingest.sources import Rejected, SourceError, open_source
from tagsight.ingest.sources.tagsonly import TagsOnlySource

HARRISON = Path(os.environ.get("TAGSIGHT_DATA", Path(__file__).parents[4] / "shared" / "data")) / "harrison"


def test_the_harrison_layout_gives_one_post_per_line_with_its_query(harrison_like):
    items = list(open_source(harrison_like, "tagsonly"))
    assert [p.post_id for p in items] == ["1", "2", "3", "4"]
    assert items[0].hashtags == ("sea", "instapic", "instagram", "trip", "travel") and items[2].hashtags == ()
    assert [p.extra.get("query") for p in items] == ["sea", "sea", "sea", "dog"]
    assert all(p.media == () and p.author_id == "unknown" and p.visibility == "public" for p in items)


def test_a_plain_txt_file_and_bad_lines(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_bytes(b"cat dog\n#sun \xe2\x80\x8bzw\xe2\x80\x8b \xf0\x9f\x90\xb1\nbad \xff byte\n"
                     + " ".join(f"t{i}" for i in range(600)).encode() + b"\nlast")
    items = list(TagsOnlySource(path))
    assert items[0].hashtags == ("cat", "dog") and "query" not in items[0].extra
    assert items[1].hashtags == ("sun", "\u200bzw\u200b", "🐱")
    assert [(i.ref, i.reason, i.post_id) for i in items if isinstance(i, Rejected)] == [
        ("tags.txt:3", "invalid_utf8", "3"), ("tags.txt:4", "too_many_hashtags", "4")]
    assert isinstance(items[4], Post) and items[4].post_id == "5"


def test_it_is_never_sniffed_and_needs_a_tag_list(harrison_like, tmp_path):
    assert not TagsOnlySource.sniff(harrison_like) and not TagsOnlySource.sniff(harrison_like / "tag_list.txt")
    with pytest.raises(SourceError, match="tag_list.txt"):
        TagsOnlySource(tmp_path)
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(SourceError):
        TagsOnlySource(tmp_path / "x.csv")


@pytest.mark.slow
@pytest.mark.skipif(not HARRISON.is_dir(), reason=f"HARRISON data not found at {HARRISON} (set TAGSIGHT_DATA)")
def test_the_real_harrison_lists_load_completely():
    items = list(TagsOnlySource(HARRISON))
    assert len(items) == 57_383 and all(isinstance(p, Post) for p in items)
    assert len({t for p in items for t in p.hashtags}) == 997
    assert len({p.extra["query"] for p in items}) == 50
