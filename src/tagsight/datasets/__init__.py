"""Dataset generators: the synthetic feed, social-imagenette over real photos, and ground-truth splits.

They write folders in the formats ``tagsight ingest`` reads (and the truth the pipeline never reads);
nothing in the training or serving path depends on them.
"""
