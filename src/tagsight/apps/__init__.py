"""The uses of a trained backbone behind one interface (``App``): hashtags, alt text, categories, moderation, similar.

Importing the package registers every app in ``APPS``; ``load_apps(bundle_dir)`` builds them from a
bundle folder (``tagsight.apps.bundle``) sharing one backbone.

The package is split in two. Serving (what ``tagsight serve`` and ``tagsight predict`` import):
``base``, ``embedder``, ``calibrators``, ``hashtags``, ``alt_text``, ``head_apps``, ``similar``,
``openset``, ``run``, ``bundle``, ``export_format``, ``predict``. Fitting (imported only by the
commands that build a bundle's parts): ``calibration``, ``heads``, ``starter`` (fitting part),
``export``, ``thresholds``, ``verified``. The serving modules import no module of ``tagsight.train``,
``tagsight.methods`` or the feature-fitting parts of ``tagsight.eval`` (checked by
``tests/serve/test_lean_imports.py``).
"""

from tagsight.apps.base import APPS, App
from tagsight.apps import alt_text, hashtags, head_apps, similar  # noqa: F401  (register the apps)
from tagsight.apps.bundle import Bundle, load_apps, load_bundle

__all__ = ["APPS", "App", "Bundle", "load_apps", "load_bundle"]
