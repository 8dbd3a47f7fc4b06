"""The uses of a trained backbone behind one interface (``App``): hashtags, alt text, categories, moderation, similar."""

from tagsight.apps.base import APPS, App

__all__ = ["APPS", "App"]
