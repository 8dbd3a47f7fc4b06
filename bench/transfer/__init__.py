"""The transfer experiment (tagsight issue 5): arms as data in a YAML file, run as tagsight verbs.

``spec`` parses and checks the experiment file, ``jobs`` runs the arms (resumable), ``results``
aggregates the per-arm/seed JSON files into the table, the plot and docs/results.md; ``run`` is
the command line (``python bench/transfer/run.py``).
"""
