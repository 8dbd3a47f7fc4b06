"""The domain's records, below ingest and privacy: posts (``posts``), hashtag text (``text``), the catalog tables (``catalog``)."""
