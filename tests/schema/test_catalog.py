import pyarrow as pa

from tagsight.schema import catalog


def test_a_posts_table_written_before_the_sensitive_columns_existed_is_rewritten_with_nulls(tmp_path):
    old = pa.table({"source": ["s"], "post_id": ["p1"], "author_id": ["a"], "created_at": ["2024-01-01T00:00:00Z"],
                    "visibility": ["public"], "caption": [""], "hashtags": [["cat"]], "consent_ai_training": [None],
                    "region": [None], "license": [None], "likes": [None], "label": [None], "n_media": [1]})
    assert catalog.write_table(tmp_path, "posts", old) == 1
    (row,) = catalog.read_table(tmp_path, "posts").to_pylist()
    assert row["sensitive"] is None and row["content_warning"] is None and row["hashtags"] == ["cat"]
