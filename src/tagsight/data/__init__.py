"""Data: synthetic feeds, benchmark corpora and (later) the training input pipeline."""
