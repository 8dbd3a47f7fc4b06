"""The one interface every served use of a backbone has: an ``App`` maps a batch of images to JSON answers.

Apps (hashtag suggestion, alt text, categorisation, moderation, similar images) are registered in
``APPS`` by name. The batch CLI (``tagsight predict``) and the HTTP server (``tagsight serve``) only
know this interface: ``predict(images)`` returns one JSON-serialisable dict per image, in order.
An app that holds posts (the similar-image index) must never return a post its dataset's
tombstones forget (``tagsight.privacy.tombstones``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from PIL import Image

from tagsight.registry import Registry


class App(abc.ABC):
    """One use of a trained backbone; ``name`` is its registry and endpoint name (e.g. ``"alt-text"``)."""

    name: str
    """Set by each app class; an app loaded under another name (a head app) sets it per instance."""

    @abc.abstractmethod
    def predict(self, images: Sequence[Image.Image], **options: Any) -> list[dict[str, Any]]:
        """One JSON-serialisable answer per image, in input order; ``options`` are per-request settings."""

    def describe(self) -> dict[str, Any]:
        """What the app was built from (for ``/healthz``, cards and lineage); apps add their own fields."""
        return {"name": self.name}


APPS: Registry[App] = Registry("app")
