"""Hashtags into labels: normalisation, segmentation, WordNet canonicalisation, vocabulary, sampling."""
