"""Ingest: source adapters, image sanitising, consent gate, catalog and WebDataset shards."""
