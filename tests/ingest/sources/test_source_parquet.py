import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagsight.schema.posts import Media, Post
from tagsight.ingest.sources import Rejected, SourceError
from tagsight.ingest.sources import parquet as parquet_mod
from tagsight.ingest.sources.parquet import ParquetSource


def _posts(n):
    return [Post.from_dict({"post_id": f"p{i}", "author_id": "u", "created_at": 1_700_000_000 + i,
                            "visibility": "public", "caption": f"#tag{i}",
                            "media": [{"path": f"img/{i}.jpg", "alt_text": "alt"}],
                            "consent": {"ai_training": i % 2 == 0}}, source="feed") for i in range(n)]


def test_rows_written_from_post_to_dict_come_back_as_the_same_posts(tmp_path):
    posts = _posts(5)
    pq.write_table(pa.Table.from_pylist([p.to_dict() for p in posts]), tmp_path / "feed.parquet")
    src = ParquetSource(tmp_path / "feed.parquet")
    assert list(src) == posts and src.root == tmp_path


def test_media_as_path_strings_a_boolean_consent_column_and_a_timestamp_column(tmp_path):
    table = pa.table({
        "post_id": pa.array([1, 2], pa.int64()), "author_id": ["a", "b"], "visibility": ["public", "unlisted"],
        "created_at": pa.array([dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 2, 11)], pa.timestamp("s")),
        "hashtags": pa.array([["Cat", "dog"], None], pa.list_(pa.string())), "caption": ["", "hi #sea"],
        "media": pa.array([["a.jpg", "b.jpg"], []], pa.list_(pa.string())),
        "consent_ai_training": pa.array([True, None], pa.bool_())})
    pq.write_table(table, tmp_path / "x.parquet")
    first, second = ParquetSource(tmp_path / "x.parquet")
    assert first.post_id == "1" and first.created_at == "2024-05-01T10:00:00Z"
    assert first.media == (Media(path="a.jpg"), Media(path="b.jpg")) and first.consent_ai_training is True
    assert first.hashtags == ("Cat", "dog") and second.hashtags == ("sea",)
    assert second.consent_ai_training is None and second.media == () and second.visibility == "unlisted"


def test_bad_rows_are_rejected_with_file_and_row_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_mod, "BATCH_ROWS", 2)
    rows = [p.to_dict() for p in _posts(5)]
    rows[3]["visibility"] = "secret"
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet", row_group_size=2)
    pq.write_table(pa.Table.from_pylist(rows[:1]), tmp_path / "a.parquet")
    items = list(ParquetSource(tmp_path))
    assert [i.post_id for i in items] == ["p0", "p0", "p1", "p2", "p3", "p4"]
    bad = items[4]
    assert isinstance(bad, Rejected) and (bad.ref, bad.reason) == ("b.parquet[3]", "invalid_field:visibility")


def test_a_file_without_the_required_columns_or_not_parquet_is_a_source_error(tmp_path):
    pq.write_table(pa.table({"id": [1], "text": ["x"]}), tmp_path / "other.parquet")
    with pytest.raises(SourceError, match="post_id"):
        ParquetSource(tmp_path / "other.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match="not a readable Parquet"):
        ParquetSource(tmp_path / "broken.parquet")
