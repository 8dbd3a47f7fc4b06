"""The uses of a trained backbone behind one interface (``App``): hashtags, alt text, categories, moderation, similar.

Importing the package registers every app in ``APPS``; ``load_apps(bundle_dir)`` builds them from a
bundle folder (``tagsight.apps.bundle``) sharing one backbone.
"""

from tagsight.apps.base import APPS, App
from tagsight.apps import alt_text, hashtags, heads, similar  # noqa: F401  (register the apps)
from tagsight.apps.bundle import Bundle, load_apps, load_bundle

__all__ = ["APPS", "App", "Bundle", "load_apps", "load_bundle"]
