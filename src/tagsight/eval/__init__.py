"""Evaluation of trained models: hashtag-prediction metrics."""

from tagsight.metrics import average_precision, chance_map, hashtag_metrics, per_label_average_precision

__all__ = ["average_precision", "chance_map", "hashtag_metrics", "per_label_average_precision"]
