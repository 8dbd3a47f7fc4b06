"""Forgetting reaches curation: the curation table and the review decisions of a dataset lose the posts."""

from tagsight.privacy.forget import post_key_table_forgetter, register_forgetter

register_forgetter("curation", *post_key_table_forgetter("catalog/curation.parquet"), stage=60)
register_forgetter("reviews", *post_key_table_forgetter("catalog/reviews.parquet"), stage=60)
