"""Self-contained HTML reports (one file, figures inline) for every stage: vocabularies, training, evaluation."""
