"""Hashtag relevance: which (image, hashtag) pairs the picture actually shows, and how visual each label is.

``score`` cross-fits a hashtag-prediction head on frozen features of an external backbone, so every
(sample, label) pair gets a probability from a model that never trained on that image, and every
label a visualness (its out-of-fold average precision). ``filter`` writes a NEW dataset version
from a scores folder under a policy (drop pairs, drop labels, or keep everything with per-pair
loss weights), with a manifest naming its parent. ``truth`` measures both against the
social-imagenette ground truth. This package sits beside apps/curate: it uses eval's features.
"""
